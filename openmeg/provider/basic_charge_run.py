"""The basic charge of an aggregate building for a month (Appendix V, steps 1-5): each owner's
usage from their smart meter (validated readings), their peak demand, the building's charge
and contracted power, and each owner's statement."""

from __future__ import annotations

import html
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

import pandas as pd

from openmeg.core.site import Site
from openmeg.core.store import Store
from openmeg.operation.mdms.validated import ValidatedReadings
from openmeg.provider.basic_charge import OwnerMonth, allocate, peak_demand_kw
from openmeg.provider.billing_run import month_bounds


@dataclass(frozen=True, kw_only=True)
class Statement:
    owner: str
    name: str
    meter: str
    share: float
    days_present: int
    days_in_month: int
    peak_kw: float
    peak_at: pd.Timestamp | None
    estimated_intervals: int
    cents: int
    share_part_cents: float
    peak_part_cents: float

    @property
    def amount(self) -> Decimal:
        return Decimal(self.cents) / 100


def basic_charge_month(
    site: Site, store: Store, building_id: str, period: str, *, share_weight: float = 0.5
) -> list[Statement]:
    buildings = {b.id: b for b in site.buildings}
    if building_id not in buildings:
        raise ValueError(f"no building {building_id!r}; buildings: {', '.join(sorted(buildings))}")
    building = buildings[building_id]
    tz = site.site.timezone
    start, end = month_bounds(period, tz)
    days = round((end - start).total_seconds() / 86400)
    meter_of = {m.customer: m.id for m in site.meters}
    v = ValidatedReadings(store, site.site.id)
    months, rows = [], []
    for c in (c for c in site.customers if c.building == building_id):
        if c.id not in meter_of:
            raise ValueError(f"owner {c.id!r} has no smart meter in the site file")
        first = start
        if c.since is not None:
            first = max(start, pd.Timestamp(c.since).tz_localize(tz))
        present = max(0, round((end - first).total_seconds() / 86400))
        frame = v.latest(meter_of[c.id], "import", first.to_pydatetime(), end.to_pydatetime())
        if len(frame) < present * 96 - 8:  # a whole day missing: VEE has not run
            raise ValueError(
                f"owner {c.id!r}: validated readings cover {len(frame)} of the month's "
                "intervals; run openmeg vee run first"
            )
        series = pd.Series(
            frame["value_kwh"].to_numpy(), index=pd.DatetimeIndex(frame["interval_start"])
        )
        peak, at = peak_demand_kw(series, tz)
        months.append(
            OwnerMonth(owner=c.id, share=c.share or 0.0, days_present=present, peak_kw=peak)
        )
        rows.append((c, meter_of[c.id], present, peak, at, int((frame["quality"] != "good").sum())))
    allocations = allocate(
        months,
        charge_cents=round(building.basic_charge_per_month * 100),
        contracted_kw=building.contracted_kw,
        days_in_month=days,
        share_weight=share_weight,
    )
    return [
        Statement(
            owner=c.id,
            name=c.name,
            meter=meter,
            share=c.share or 0.0,
            days_present=present,
            days_in_month=days,
            peak_kw=peak,
            peak_at=at,
            estimated_intervals=estimated,
            cents=a.cents,
            share_part_cents=a.share_part_cents,
            peak_part_cents=a.peak_part_cents,
        )
        for (c, meter, present, peak, at, estimated), a in zip(rows, allocations, strict=True)
    ]


@dataclass(frozen=True, kw_only=True)
class BasicChargeIssue:
    """A month's statements of a building, written out; ``total_cents`` is their sum."""

    statements: list[Statement]
    currency: str
    total_cents: int


def issue_basic_charge(
    site: Site,
    store: Store,
    building_id: str,
    period: str,
    out: Path,
    *,
    share_weight: float = 0.5,
) -> BasicChargeIssue:
    """The month's statements (``basic_charge_month``), each written as HTML to
    ``out/basic-charge-<owner>-<period>.html``; ``ValueError`` says why there are none."""
    statements = basic_charge_month(site, store, building_id, period, share_weight=share_weight)
    b = next(x for x in site.buildings if x.id == building_id)
    total = sum(s.cents for s in statements)
    out.mkdir(parents=True, exist_ok=True)
    for s in statements:
        (out / f"basic-charge-{s.owner}-{period}.html").write_text(
            statement_html(
                s, building=b.name, period=period, currency=b.currency, total_cents=total
            )
        )
    return BasicChargeIssue(statements=statements, currency=b.currency, total_cents=total)


def statement_html(
    s: Statement, *, building: str, period: str, currency: str, total_cents: int
) -> str:
    peak_at = f" ({s.peak_at:%Y-%m-%d %H:%M})" if s.peak_at is not None else ""
    note = (
        (
            f"<p><b>Includes {s.estimated_intervals} estimated quarter hours</b> "
            "(missing or invalid readings, estimated by the MDMS).</p>"
        )
        if s.estimated_intervals
        else ""
    )
    return (
        "<!doctype html><html><head><meta charset='utf-8'>"
        f"<title>Basic charge {html.escape(s.owner)} {period}</title></head><body>"
        f"<h1>{html.escape(building)}: basic charge {period}</h1>"
        f"<p>Owner: {html.escape(s.name)} ({html.escape(s.owner)}), "
        f"meter {html.escape(s.meter)}</p>"
        f"<table><tr><td>ownership share</td><td>{s.share:.2%}</td></tr>"
        f"<tr><td>days in the building</td><td>{s.days_present} of {s.days_in_month}</td></tr>"
        f"<tr><td>peak demand (largest hourly average)</td>"
        f"<td>{s.peak_kw:.2f} kW{peak_at}</td></tr>"
        f"<tr><td>part by share</td><td>{currency} {s.share_part_cents / 100:,.2f}</td></tr>"
        f"<tr><td>part by peak demand</td><td>{currency} {s.peak_part_cents / 100:,.2f}</td></tr>"
        f"<tr><td><b>your basic charge</b></td><td><b>{currency} {s.amount:,.2f}</b></td></tr>"
        f"<tr><td>the building's basic charge</td><td>{currency} {total_cents / 100:,.2f}</td></tr>"
        f"</table>{note}</body></html>\n"
    )
