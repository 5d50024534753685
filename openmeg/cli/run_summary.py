"""The closing summary of ``openmeg run``: what the MEG stored, validated, traded and settled
while it ran, from the services' counters and the store."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from openmeg.app import LiveMeg


def run_summary(meg: LiveMeg, start: datetime, end: datetime) -> list[str]:
    """Lines that say what the run from ``start`` to ``end`` (the MEG's clock) did: readings
    stored by the MDMS, local days VEE validated, intervals the local market cleared and the
    local days settled on the validated series."""
    from openmeg.market.settlement_run import local_days

    ingest, vee, economics = meg.ingest, meg.vee, meg.economics
    tz = meg.site.site.timezone
    lines = [
        f"ran from {start:%Y-%m-%d %H:%M} to {end:%Y-%m-%d %H:%M} UTC (the MEG's clock)",
        f"readings stored: {ingest.stored} new, {ingest.duplicates} already stored, "
        f"{ingest.conflicts} conflicting, {ingest.refused} batches refused",
    ]
    days = sorted(vee.local_days)
    named = ", ".join(d.isoformat() for d in days[:5]) + (" ..." if len(days) > 5 else "")
    lines.append(
        f"VEE: {_days(len(days))} validated ({named or 'none closed yet'}; {tz}), "
        f"{vee.days_validated} meter-channel-days, {vee.new_versions} estimated or changed "
        f"intervals, {vee.problems} could not be validated"
    )
    cleared = meg.local_market.settlement(start, end)
    traded = cleared[cleared.local_kwh != 0] if len(cleared) else cleared
    lines.append(
        f"local market: {cleared.interval_start.nunique()} intervals cleared in real time, "
        f"{len(traded)} local trades (customer-intervals)"
    )
    span = [d.isoformat() for d in local_days(start, end, tz)]
    settled = economics.settlement.latest(span) if span else None
    if settled is None or settled.empty:
        lines.append("settled on the validated series: no local day yet")
    else:
        per_day = settled.groupby("day").customer.nunique()
        said = ", ".join(f"{d} ({n} customers)" for d, n in per_day.items())
        lines.append(f"settled on the validated series: {_days(len(per_day))}: {said}")
    return lines


def _days(n: int) -> str:
    return f"{n} local day" + ("" if n == 1 else "s")
