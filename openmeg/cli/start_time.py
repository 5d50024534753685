"""``--start`` of ``simulate`` and ``run``: a date (the site's local midnight) or an instant."""

from __future__ import annotations

from datetime import UTC, date, datetime, time
from zoneinfo import ZoneInfo


def start_instant(text: str, timezone: str) -> datetime:
    """The aware UTC instant ``text`` names: a date ``YYYY-MM-DD`` is midnight of that day in
    the site's ``timezone`` (so ``2026-10-01`` starts the site's local October); an ISO 8601
    instant is taken as written, UTC when it names no zone; ``ValueError`` says what is
    accepted."""
    text = text.strip()
    try:
        if len(text) == 10:
            day = date.fromisoformat(text)
            return datetime.combine(day, time(0), tzinfo=ZoneInfo(timezone)).astimezone(UTC)
        t = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError as err:
        raise ValueError(
            f"--start {text!r} is neither a date (2026-06-01, the site's local midnight) nor an "
            f"ISO 8601 instant (2026-06-01T12:00:00Z): {err}"
        ) from err
    return t.astimezone(UTC) if t.tzinfo else t.replace(tzinfo=UTC)
