"""``--start`` of ``simulate`` and ``run``: a date or an ISO 8601 instant, UTC if no zone."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from datetime import datetime


def start_instant(text: str) -> datetime:
    """The aware UTC instant ``text`` names, as every ``openmeg`` command reads instants: a
    date ``2026-06-01`` is midnight UTC; an instant is taken as written, UTC when it names no
    zone (``2026-10-01T00:00-04:00`` is midnight in New York); ``ValueError`` says what is
    accepted."""
    from openmeg.cli.common import utc

    try:
        return utc(text.strip())
    except ValueError as err:
        raise ValueError(
            f"--start {text!r} is neither a date (2026-06-01, midnight UTC) nor an ISO 8601 "
            f"instant (2026-06-01T12:00:00Z, 2026-10-01T00:00-04:00): {err}"
        ) from err
