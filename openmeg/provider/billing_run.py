"""A billing run: every customer of a site with a tariff and a meter, from validated readings,
issued (``issued_bills``). A run closes the period: each bill is numbered and frozen; a later
run issues a revision with a credit or debit note where a bill changed, and nothing where none
did. The customers of one tariff are billed together, as [customers x intervals] arrays, with
the carry-over (net metering kWh, net billing credit) taken from each customer's issued bill of
the month before.

A meter with sub-meters (an aggregate building's main meter) is billed for its common part
only (``billed_energy``, ``common_part``): the main meter minus its sub-meters, per interval.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from openmeg.core.site import Site
from openmeg.core.site_sections import Customer
from openmeg.core.store import Store
from openmeg.core.tariff import Tariff
from openmeg.provider.bill_document import bill_html, bill_pdf
from openmeg.provider.bill_freeze import tariff_version
from openmeg.provider.bill_matrix import AmountError
from openmeg.provider.billed_energy import BilledEnergy, billed_energies
from openmeg.provider.billing import Bill, Carry, bill_month
from openmeg.provider.issued_bills import IssuedBill, IssuedBills, ToIssue


@dataclass(frozen=True, kw_only=True)
class BillOutcome:
    """One customer's outcome: the issued bill (``issued``, ``revised`` or ``unchanged``:
    what this run did), or why there is none (``problem``)."""

    customer: str
    issued: IssuedBill | None = None
    outcome: str = ""
    problem: str = ""
    follow_up: str = ""
    """What to do next: bill the next month again when its carry-in changed."""

    @property
    def bill(self) -> Bill | None:
        return None if self.issued is None else self.issued.bill


def month_bounds(period: str, timezone: str) -> tuple[pd.Timestamp, pd.Timestamp]:
    """``2026-10`` -> the local month's first instant and the next month's."""
    if not re.fullmatch(r"(19|20|21)\d\d-(0[1-9]|1[0-2])", period):
        raise ValueError(
            f"period {period!r} must be a month YYYY-MM (01-12) of the years 1900 to 2199, "
            "e.g. 2026-10"
        )
    start = pd.Timestamp(f"{period}-01").tz_localize(timezone)
    return start, start + pd.DateOffset(months=1)


def previous_period(period: str, months: int = 1) -> str:
    return str((pd.Period(period, freq="M") - months).strftime("%Y-%m"))


def _follow_up(issued: IssuedBills, customer: str, period: str, bill: IssuedBill) -> str:
    """A revision whose carry-over changed leaves the next month's issued bill on the old
    carry: it must be billed again."""
    after = previous_period(period, -1)
    if issued.latest(customer, after) is None:
        return ""
    before = issued.revisions(customer, period)[bill.revision - 2]
    if before.carry_out == bill.carry_out:
        return ""
    return (
        f"the carry-over into {after} changed and {after} is issued: bill it again "
        f"(openmeg bill --period {after})"
    )


def bills_of_tariff(
    tariff: Tariff,
    index: pd.DatetimeIndex,
    import_kwh: np.ndarray,
    export_kwh: np.ndarray,
    *,
    timezone: str,
    customers: Sequence[str],
    meters: Sequence[str],
    carry_in: Sequence[Any],
) -> tuple[list[Bill], list[Any]]:
    """The bills of one tariff's customers for one month, and what each carries to the next.

    ``import_kwh``, ``export_kwh``: [customers x intervals] kWh over ``index`` (UTC starts);
    ``carry_in[i]``: the ``carry_out`` of customer i's issued bill of the month before (None:
    none issued, nothing carried). A ``carry_out`` is JSON data, stored with the bill.
    """
    start = index[0].tz_convert(timezone)
    before = (start - pd.Timedelta(days=1)).month
    periods = max(len(tariff.energyratestructure or []), 1)
    nothing = {"month": before, "surplus_kwh": [0.0] * periods, "excess_kwh": 0.0}
    rows = [r if r is not None else {**nothing, "credit": 0.0, "year_bill": 0.0} for r in carry_in]
    carry = Carry.from_rows(rows, month=before)
    bills, carry_out = bill_month(
        tariff,
        index,
        import_kwh,
        export_kwh,
        timezone=timezone,
        customers=customers,
        meters=meters,
        carry_in=carry,
    )
    return list(bills), [carry_out.row(i) for i in range(len(customers))]


Made = dict[str, tuple[Bill, Any, dict[str, Any], str]]
"""Bills made and not yet issued, by customer: the bill, its carry-out, the reading versions it
came from and its tariff's id."""

MakeBills = Callable[[list[str], dict[str, Any]], tuple[Made, dict[str, str]]]
"""``make(customers, carry_in) -> (made, problems)``: how a run makes its bills (in process by
``make_bills``; on Dask workers by ``billing_partitions``)."""


def make_bills(
    site: Site, store: Store, customers: Sequence[str], period: str, carry_in: dict[str, Any]
) -> tuple[Made, dict[str, str]]:
    """The bills of ``customers`` (ids of customers with a tariff and a meter) for ``period``
    from validated readings, not issued, and what keeps the others from being billed
    (``problems``, by customer). ``carry_in``: each customer's carry-out of the issued bill of
    the month before (absent: none issued). Pure of the others: a customer's bill is the same
    whichever customers it is made with."""
    tz = site.site.timezone
    start, end = month_bounds(period, tz)
    meter_of = {m.customer: m.id for m in site.meters}
    wanted = set(customers)
    chosen = [c for c in site.customers if c.id in wanted]
    problems: dict[str, str] = {}
    groups: dict[str, list[tuple[Customer, BilledEnergy]]] = {}
    energies = billed_energies(site, store, [meter_of[c.id] for c in chosen], period, start, end)
    for c in chosen:
        energy = energies[meter_of[c.id]]
        if isinstance(energy, str):
            problems[c.id] = energy
        else:
            groups.setdefault(str(c.tariff), []).append((c, energy))
    made: Made = {}
    for tariff_id, members in groups.items():
        tariff = site.tariffs[tariff_id]
        while members:  # customers whose amounts cannot be billed are set aside, once
            try:
                bills, carry_out = bills_of_tariff(
                    tariff,
                    members[0][1].index,
                    np.array([e.import_values for _, e in members]),
                    np.array([e.export_values for _, e in members]),
                    timezone=tz,
                    customers=[c.id for c, _ in members],
                    meters=[meter_of[c.id] for c, _ in members],
                    carry_in=[carry_in.get(c.id) for c, _ in members],
                )
            except AmountError as err:
                problems.update({str(k): v for k, v in err.rows.items()})
                members = [(c, e) for c, e in members if c.id not in err.rows]
                continue
            except ValueError as err:
                problems.update({c.id: str(err) for c, _ in members})
                break
            for (c, e), b, carry in zip(members, bills, carry_out, strict=True):
                made[c.id] = (b, carry, e.readings, tariff_id)
            break
    return made, problems


def run_billing(
    site: Site,
    store: Store,
    period: str,
    out_dir: Path | None = None,
    customers: set[str] | None = None,
    *,
    now: datetime,
    make: MakeBills | None = None,
) -> list[BillOutcome]:
    """Bill and issue ``period`` at ``now`` for every customer with a tariff and a meter
    (or only ``customers``); documents of each customer's newest revision in ``out_dir``.
    ``make``: how the bills are made (default ``make_bills`` in process); the issuing (numbers,
    one transaction) is always done here. ``ValueError`` when the period is not over at ``now``."""
    tz = site.site.timezone
    _, end = month_bounds(period, tz)
    if end > pd.Timestamp(now):
        raise ValueError(
            f"{period} is not over until {end.isoformat()}: bill it once it has closed"
        )
    issued = IssuedBills(store, site.site.id, tz)
    meter_of = {m.customer: m.id for m in site.meters}
    chosen = [
        c.id
        for c in site.customers
        if c.tariff is not None and c.id in meter_of and (not customers or c.id in customers)
    ]
    before = issued.newest(previous_period(period)) if chosen else {}
    carry_in = {c: before[c].carry_out for c in chosen if c in before}
    if make is None:
        made, problems = make_bills(site, store, chosen, period, carry_in)
    else:
        made, problems = make(chosen, carry_in)
    billed = [c for c in site.customers if c.id in made]
    versions = {tid: tariff_version(site.tariffs[tid]) for tid in {m[3] for m in made.values()}}
    frozen = issued.issue_all(
        [
            ToIssue(
                bill=made[c.id][0],
                tariff_version=versions[made[c.id][3]],
                readings=made[c.id][2],
                carry_out=made[c.id][1],
            )
            for c in billed
        ],
        period=period,
        now=now,
    )
    done = {c.id: f for c, f in zip(billed, frozen, strict=True)}
    outcomes = []
    for c in site.customers:
        if c.id in problems:
            outcomes.append(BillOutcome(customer=c.id, problem=problems[c.id]))
        elif c.id in done:
            bill_issued, outcome = done[c.id]
            if out_dir is not None:
                _write(out_dir, site, c, period, bill_issued)
            follow = _follow_up(issued, c.id, period, bill_issued) if outcome == "revised" else ""
            outcomes.append(
                BillOutcome(customer=c.id, issued=bill_issued, outcome=outcome, follow_up=follow)
            )
    return outcomes


def _write(out_dir: Path, site: Site, c: Customer, period: str, issued: IssuedBill) -> None:
    """``bill-<customer>-<period>.html`` and ``.pdf`` for revision 1, ``...-r<n>`` for later
    revisions: a document once written stays as it was issued."""
    out_dir.mkdir(parents=True, exist_ok=True)
    revision = "" if issued.revision == 1 else f"-r{issued.revision}"
    stem = out_dir / f"bill-{c.id}-{period}{revision}"
    stem.with_suffix(".html").write_text(
        bill_html(issued, site_name=site.site.name, customer_name=c.name)
    )
    stem.with_suffix(".pdf").write_bytes(
        bill_pdf(issued, site_name=site.site.name, customer_name=c.name)
    )
