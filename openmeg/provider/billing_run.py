"""A billing run: every customer of a site with a tariff and a meter, from validated readings."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from openmeg.core.site import Site
from openmeg.core.store import Store
from openmeg.operation.mdms.validated import ValidatedReadings
from openmeg.provider.bill_document import bill_html, bill_pdf
from openmeg.provider.billing import Bill, bill


@dataclass(frozen=True, kw_only=True)
class BillOutcome:
    customer: str
    bill: Bill | None
    problem: str = ""


def month_bounds(period: str, timezone: str) -> tuple[pd.Timestamp, pd.Timestamp]:
    """``2026-10`` -> the local month's first instant and the next month's."""
    if not re.fullmatch(r"(19|20|21)\d\d-(0[1-9]|1[0-2])", period):
        raise ValueError(f"period {period!r} must be YYYY-MM, e.g. 2026-10")
    start = pd.Timestamp(f"{period}-01").tz_localize(timezone)
    return start, start + pd.DateOffset(months=1)


def validated_series(
    v: ValidatedReadings, meter: str, channel: str, start: pd.Timestamp, end: pd.Timestamp
) -> pd.Series:
    frame = v.latest(meter, channel, start.to_pydatetime(), end.to_pydatetime())
    if frame.empty:
        return pd.Series([], index=pd.DatetimeIndex([], tz="UTC"), dtype=float)
    return pd.Series(frame["value_kwh"].to_numpy(), index=pd.DatetimeIndex(frame["interval_start"]))


def run_billing(
    site: Site,
    store: Store,
    period: str,
    out_dir: Path | None = None,
    customers: set[str] | None = None,
) -> list[BillOutcome]:
    tz = site.site.timezone
    start, end = month_bounds(period, tz)
    v = ValidatedReadings(store, site.site.id)
    meter_of = {m.customer: m.id for m in site.meters}
    outcomes = []
    for c in site.customers:
        if c.tariff is None or c.id not in meter_of or (customers and c.id not in customers):
            continue
        meter = meter_of[c.id]
        imp = validated_series(v, meter, "import", start, end)
        exp = validated_series(v, meter, "export", start, end)
        try:
            b = bill(
                site.tariffs[c.tariff],
                imp,
                exp,
                timezone=tz,
                customer=c.id,
                meter=meter,
                start=start,
                end=end,
            )
        except ValueError as err:
            outcomes.append(BillOutcome(customer=c.id, bill=None, problem=str(err)))
            continue
        if out_dir is not None:
            out_dir.mkdir(parents=True, exist_ok=True)
            stem = out_dir / f"bill-{c.id}-{period}"
            stem.with_suffix(".html").write_text(
                bill_html(b, site_name=site.site.name, customer_name=c.name)
            )
            stem.with_suffix(".pdf").write_bytes(
                bill_pdf(b, site_name=site.site.name, customer_name=c.name)
            )
        outcomes.append(BillOutcome(customer=c.id, bill=b))
    return outcomes
