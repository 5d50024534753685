"""A billing run: every customer of a site with a tariff and a meter, from validated readings,
issued (``issued_bills``): a run closes the period; a later run issues a revision with a
credit or debit note where a bill changed, and nothing where none did.

A meter with sub-meters (an aggregate building's main meter) is billed for its common part
only (``common_part``): the main meter minus its sub-meters, interval by interval.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from openmeg.core.site import Site
from openmeg.core.store import Store
from openmeg.core.tariff import Tariff
from openmeg.operation.mdms.store import MeterReadings
from openmeg.operation.mdms.validated import ValidatedReadings
from openmeg.provider.bill_document import bill_html, bill_pdf
from openmeg.provider.bill_freeze import readings_version, tariff_version
from openmeg.provider.billing import Bill, bill
from openmeg.provider.common_part import common_part
from openmeg.provider.issued_bills import IssuedBill, IssuedBills


@dataclass(frozen=True, kw_only=True)
class BillOutcome:
    """One customer's outcome: the issued bill (``issued``, ``revised`` or ``unchanged``:
    what this run did), or why there is none (``problem``)."""

    customer: str
    issued: IssuedBill | None = None
    outcome: str = ""
    problem: str = ""

    @property
    def bill(self) -> Bill | None:
        return None if self.issued is None else self.issued.bill


def month_bounds(period: str, timezone: str) -> tuple[pd.Timestamp, pd.Timestamp]:
    """``2026-10`` -> the local month's first instant and the next month's."""
    if not re.fullmatch(r"(19|20|21)\d\d-(0[1-9]|1[0-2])", period):
        raise ValueError(f"period {period!r} must be YYYY-MM, e.g. 2026-10")
    start = pd.Timestamp(f"{period}-01").tz_localize(timezone)
    return start, start + pd.DateOffset(months=1)


def previous_period(period: str) -> str:
    return str((pd.Period(period, freq="M") - 1).strftime("%Y-%m"))


def validated_frame(
    v: ValidatedReadings, meter: str, channel: str, start: pd.Timestamp, end: pd.Timestamp
) -> pd.DataFrame:
    """The validated readings of one meter channel (``ValidatedReadings.latest``)."""
    return v.latest(meter, channel, start.to_pydatetime(), end.to_pydatetime())


@dataclass(frozen=True, kw_only=True)
class BilledEnergy:
    """What a customer is billed for: import and export per interval [kWh] over the whole
    period (UTC index), and the version of every meter channel it came from."""

    import_kwh: pd.Series
    export_kwh: pd.Series
    readings: dict[str, Any]


def billed_energy(
    site: Site, store: Store, meter: str, period: str, start: pd.Timestamp, end: pd.Timestamp
) -> BilledEnergy:
    """The meter's validated energy, less its sub-meters' when it has any; ``ValueError``
    says which reading is missing and what to do."""
    v = ValidatedReadings(store, site.site.id)
    idx = pd.date_range(
        start.tz_convert("UTC"), end.tz_convert("UTC"), freq="15min", inclusive="left"
    )
    subs = [m.id for m in site.meters if m.parent == meter]
    versions: dict[str, Any] = {}
    arrays: dict[str, list[Any]] = {"import": [], "export": []}
    for m in [meter, *subs]:
        for channel in ("import", "export"):
            frame = validated_frame(v, m, channel, start, end)
            versions[f"{m}/{channel}"] = readings_version(frame)
            series = pd.Series(
                frame["value_kwh"].to_numpy(dtype=float),
                index=pd.DatetimeIndex(frame["interval_start"]),
                dtype=float,
            ).reindex(idx)
            if channel == "export":
                series = series.fillna(0.0)  # no export validated: nothing exported
            elif series.isna().any():
                raise ValueError(_missing(store, m, meter, period, series, start, end))
            arrays[channel].append(series.to_numpy())
    imp, exp = arrays["import"][0], arrays["export"][0]
    if subs:
        imp, exp = common_part(
            imp, exp, np.array(arrays["import"][1:]), np.array(arrays["export"][1:])
        )
    return BilledEnergy(
        import_kwh=pd.Series(imp, index=idx),
        export_kwh=pd.Series(exp, index=idx),
        readings=versions,
    )


def _missing(
    store: Store,
    meter: str,
    billed: str,
    period: str,
    series: pd.Series,
    start: pd.Timestamp,
    end: pd.Timestamp,
) -> str:
    of = (
        ""
        if meter == billed
        else f"; {meter} is a sub-meter of {billed}, which is billed for its common part"
    )
    raw = MeterReadings(store).series(meter, "import", start.to_pydatetime(), end.to_pydatetime())
    if raw.empty:
        return f"no readings for that period: import or run first (meter {meter}, {period}){of}"
    first = series.index[series.isna()][0]
    return (
        f"no validated import reading of {meter} for {first.isoformat()}: "
        f"run VEE first (openmeg vee run --period {period}){of}"
    )


def bill_with_carry(
    tariff: Tariff, energy: BilledEnergy, carry_in: Any, **who: Any
) -> tuple[Bill, Any]:
    """The bill and the carry-over to the next month (``None`` where the tariff carries
    nothing); ``carry_in`` is the previous month's issued ``carry_out``."""
    return bill(tariff, energy.import_kwh, energy.export_kwh, **who), None


def run_billing(
    site: Site,
    store: Store,
    period: str,
    out_dir: Path | None = None,
    customers: set[str] | None = None,
    *,
    now: datetime,
) -> list[BillOutcome]:
    """Bill and issue ``period`` at ``now`` for every customer with a tariff and a meter
    (or only ``customers``); documents of each customer's newest revision in ``out_dir``."""
    tz = site.site.timezone
    start, end = month_bounds(period, tz)
    issued = IssuedBills(store, site.site.id, tz)
    meter_of = {m.customer: m.id for m in site.meters}
    outcomes = []
    for c in site.customers:
        if c.tariff is None or c.id not in meter_of or (customers and c.id not in customers):
            continue
        meter = meter_of[c.id]
        tariff = site.tariffs[c.tariff]
        try:
            energy = billed_energy(site, store, meter, period, start, end)
            before = issued.latest(c.id, previous_period(period))
            b, carry_out = bill_with_carry(
                tariff,
                energy,
                None if before is None else before.carry_out,
                timezone=tz,
                customer=c.id,
                meter=meter,
                start=start,
                end=end,
            )
        except ValueError as err:
            outcomes.append(BillOutcome(customer=c.id, problem=str(err)))
            continue
        frozen, outcome = issued.issue(
            b,
            period=period,
            tariff_version=tariff_version(tariff),
            readings=energy.readings,
            carry_out=carry_out,
            now=now,
        )
        if out_dir is not None:
            out_dir.mkdir(parents=True, exist_ok=True)
            stem = out_dir / f"bill-{c.id}-{period}"
            stem.with_suffix(".html").write_text(
                bill_html(frozen, site_name=site.site.name, customer_name=c.name)
            )
            stem.with_suffix(".pdf").write_bytes(
                bill_pdf(frozen, site_name=site.site.name, customer_name=c.name)
            )
        outcomes.append(BillOutcome(customer=c.id, issued=frozen, outcome=outcome))
    return outcomes
