"""Announcing an alarm: on the bus for everyone watching, and in the store's event log."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from openmeg.core.bus import Bus
from openmeg.core.messages import AlarmMessage, alarm_topic
from openmeg.core.store import Store

Severity = Literal["info", "warning", "critical"]


async def announce_alarm(
    bus: Bus,
    store: Store | None,
    *,
    site: str,
    source: str,
    code: str,
    text: str,
    active: bool,
    ts: datetime,
    severity: Severity,
) -> None:
    """Publish an alarm raised (``active``) or cleared, and log it as an event."""
    msg = AlarmMessage(
        site=site, source=source, code=code, text=text, active=active, ts=ts, severity=severity
    )
    await bus.publish(alarm_topic(site, source), msg)
    if store is not None:
        store.add_event(
            ts=ts,
            site=site,
            kind="alarm" if active else "alarm_clear",
            source=source,
            code=code,
            text=text,
            severity=severity,
        )
