"""The monitoring alarms of a premises' BAS: the fire alarm and its trouble input, a security
intrusion, points whose values are not believed, and a BAS that stops answering; each raised
once when it starts and cleared once when it ends."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from openmeg.core.building_automation import BasSystem
from openmeg.core.bus import Bus
from openmeg.core.store import Store
from openmeg.customer.bems_points import Checked
from openmeg.operation.alarms import Severity, announce_alarm


@dataclass(frozen=True, kw_only=True)
class Watch:
    """One input that raises an alarm while it reads 1."""

    source: str
    point: str
    code: str
    severity: Severity
    text: str


WATCHED: dict[str, tuple[tuple[str, str, Severity, str], ...]] = {
    "fire_alarm": (
        ("alarm", "fire_alarm", "critical", "fire alarm"),
        ("trouble", "fire_trouble", "warning", "fire alarm panel trouble"),
    ),
    "security": (("intrusion", "intrusion", "critical", "security intrusion"),),
}
"""The alarm inputs of each kind of equipment: point, code, severity, what it is."""


class BasAlarms:
    """The alarms of ``bas``; ``silent_after`` polls without an answer make the BAS silent."""

    def __init__(
        self, site: str, bas: BasSystem, *, bus: Bus, store: Store | None, silent_after: int
    ) -> None:
        self.site, self.bas, self.bus, self.store = site, bas, bus, store
        self.silent_after = max(1, silent_after)
        self.watches = [
            Watch(source=e.id, point=pt, code=code, severity=sev, text=f"{e.name or e.id}: {what}")
            for e in bas.equipment
            for pt, code, sev, what in WATCHED.get(e.kind, ())
        ]
        self.active: set[tuple[str, str]] = set()
        """The (source, code) of the alarms raised now."""
        self.missed = 0

    async def _set(
        self, source: str, code: str, on: bool, text: str, ts: datetime, severity: Severity
    ) -> None:
        key = (source, code)
        if on == (key in self.active):
            return
        (self.active.add if on else self.active.discard)(key)
        await announce_alarm(
            self.bus,
            self.store,
            site=self.site,
            source=source,
            code=code,
            text=text if on else f"{text}: cleared",
            active=on,
            ts=ts,
            severity=severity,
        )

    async def silent(self, ts: datetime, why: str) -> None:
        """A poll went unanswered."""
        self.missed += 1
        if self.missed >= self.silent_after:
            text = f"the BAS {self.bas.id} of {self.bas.premises} does not answer: {why}"
            await self._set(self.bas.id, "bas_silent", True, text[:480], ts, "critical")

    async def answered(self, ts: datetime, checked: Checked) -> None:
        """A poll was answered: the silent alarm clears, the inputs raise or clear theirs."""
        self.missed = 0
        await self._set(
            self.bas.id, "bas_silent", False, f"the BAS {self.bas.id} answers", ts, "critical"
        )
        for w in self.watches:
            value = checked.good.get(f"{w.source}.{w.point}")
            if value is not None:
                await self._set(w.source, w.code, value >= 0.5, w.text, ts, w.severity)
        bad = sorted(checked.bad)
        text = f"the BAS {self.bas.id} gave values not believed: {', '.join(bad[:5])}"
        if not bad:
            text = f"the BAS {self.bas.id} gives believable values"
        await self._set(self.bas.id, "bas_bad_values", bool(bad), text[:480], ts, "warning")
