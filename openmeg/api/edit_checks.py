"""What a manual meter edit must be before it is stored: a finite, non-negative energy no larger
than any interval of a micro grid could hold, for a 15-minute interval on the grid (minutes 0, 15,
30, 45, no seconds), between 2000 and the MEG's now (a correction is of an interval that has
begun; nothing was metered before 2000 on any MEG this runs), of a known meter and channel."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

INTERVAL = timedelta(minutes=15)
EARLIEST_EDIT = datetime(2000, 1, 1, tzinfo=UTC)
MAX_INTERVAL_KWH = 100_000.0
"""400 MW for 15 minutes: far above any micro grid's meter, far below what breaks a sum."""
CHANNELS = frozenset({"import", "export"})


def edit_problem(
    meters: set[str], meter: str, channel: str, start: datetime, value_kwh: float, now: datetime
) -> str | None:
    """Why the edit is refused (to say in a 422), or None if it may be stored."""
    if meter not in meters:
        return f"no meter {meter!r}: see GET /api/v1/meters"
    if channel not in CHANNELS:
        return f"no channel {channel!r}: import or export"
    if not math.isfinite(value_kwh) or value_kwh < 0:
        return f"{value_kwh} kWh cannot be an interval's energy: give a finite value >= 0"
    if value_kwh > MAX_INTERVAL_KWH:
        return f"{value_kwh:g} kWh in 15 minutes is beyond any meter: at most {MAX_INTERVAL_KWH:g}"
    if start.tzinfo is None:
        return "give the interval start with a time zone, e.g. 2026-06-01T04:15:00Z"
    try:
        utc = start.astimezone(UTC)
    except (OverflowError, ValueError):
        return "the interval start is out of range: give one between 2000 and now"
    if not EARLIEST_EDIT <= utc <= now.astimezone(UTC) - INTERVAL:
        return (
            f"an edit is of an interval that has ended, between {EARLIEST_EDIT:%Y-%m-%d} and "
            f"now ({now.astimezone(UTC):%Y-%m-%dT%H:%MZ}); {utc.isoformat()} is not"
        )
    if utc.minute % 15 or utc.second or utc.microsecond:
        return f"{utc:%H:%M:%S} is not on the 15-minute grid: give :00, :15, :30 or :45"
    return None
