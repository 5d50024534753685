"""The runtime of the operation domain: every cycle it takes the process image as the DER data
feeder delivered it, runs the control cycle, and hands the setpoints to the write phase, which
sends them down the wire. It alarms controllers that fail and devices held for stale inputs,
announces mode changes, and measures each cycle.

It holds no plant: it knows the field only through the points on the bus and the writes.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

from openmeg.core.bus import Bus
from openmeg.core.messages import ModeChange, PointUpdate, mode_topic, point_topic
from openmeg.core.points import MODE_NAMES
from openmeg.core.store import Store
from openmeg.operation.alarms import Severity, announce_alarm
from openmeg.operation.cycle import ControlCycle
from openmeg.operation.process_image import ImageKeeper, ProcessImage, StalePoint

MODE_ALARMS: dict[str, Severity] = {"island": "warning", "blackout": "critical"}
"""The modes that raise an alarm (source ``pcc``, code the mode) while the MEG is in them."""
MODE_TEXT = {"island": "MEG islanded", "blackout": "MEG blacked out: no supply"}
MODE_SEVERITY: dict[str, Severity] = {"grid": "info", **MODE_ALARMS}
"""The severity of a mode change's event."""


class Clock(Protocol):
    def now(self) -> datetime: ...


WritePhase = Callable[[Mapping[str, float], datetime], Awaitable[object]]


@dataclass(kw_only=True)
class Status:
    """What the live status view shows."""

    ts: datetime | None = None
    mode: str = "grid"
    frequency_hz: float = 0.0
    import_kw: float = 0.0
    cycles: int = 0
    cycle_ms: float = 0.0
    soc: dict[str, float] = field(default_factory=dict)
    alarms: dict[str, str] = field(default_factory=dict)
    held: dict[str, str] = field(default_factory=dict)
    commands: int = 0


class Runtime:
    """One site's control cycle, every time ``step`` is called."""

    def __init__(
        self,
        site: str,
        images: ImageKeeper,
        cycle: ControlCycle,
        write: WritePhase,
        *,
        clock: Clock,
        bus: Bus,
        store: Store,
        batteries: tuple[str, ...] = (),
    ) -> None:
        self.site, self.images, self.cycle, self.write = site, images, cycle, write
        self.clock, self.bus, self.store = clock, bus, store
        self.batteries = batteries
        self.status = Status()
        self.last_setpoints: dict[str, float] = {}
        self._mode: float | None = None
        self.mode_alarms: set[str] = set()
        """The modes whose alarm is active."""

    async def step(self) -> None:
        """One control cycle: image, controllers, write phase."""
        t0 = time.perf_counter()
        now = self.clock.now()
        self.images.pump()
        image = self.images.image(now)
        result = self.cycle.run(image)
        await self._alarms(result.failures, now)
        await self._holds(result.holds, now)
        self.last_setpoints = result.setpoints
        await self.write(result.setpoints, now)
        self.status.cycles += 1
        await self._mode_change(image, now)
        self.status.cycle_ms = (time.perf_counter() - t0) * 1000.0
        await self.bus.publish(
            point_topic(self.site, "cycle", "duration_ms", domain="operation"),
            PointUpdate(
                site=self.site,
                device="cycle",
                name="duration_ms",
                value=self.status.cycle_ms,
                unit="ms",
                ts=now,
            ),
        )
        self._update_status(image, now)

    async def _mode_change(self, image: ProcessImage, ts: datetime) -> None:
        """A change of the MEG's mode: announced on the bus, an event in the log (with the
        utility's state), and an alarm while the MEG is islanded (warning) or blacked out
        (critical), cleared once it is back on the grid. A MEG that starts in island or
        blackout raises its alarm at once."""
        try:
            mode = image["pcc/mode"]
        except StalePoint:
            return
        if mode != mode:  # NaN: no mode known
            return
        name = MODE_NAMES.get(int(mode), "unknown")
        if self._mode is not None and mode != self._mode:
            await self.bus.publish(
                mode_topic(self.site), ModeChange(site=self.site, mode=name, ts=ts)
            )
            self.store.add_event(
                ts=ts,
                site=self.site,
                kind="mode",
                source="pcc",
                code=name,
                text=f"MEG now in {name} mode{self._cause(image, name)}",
                severity=MODE_SEVERITY.get(name, "warning"),
            )
        if self._mode is None or mode != self._mode:
            await self._mode_alarms(name, image, ts)
        self._mode = mode

    @staticmethod
    def _cause(image: ProcessImage, mode: str) -> str:
        """Why the MEG left the grid, as far as the PCC tells: the utility's state."""
        if mode == "grid":
            return ": resynchronised with the utility grid"
        sample = image.sample("pcc/utility_available")
        if sample is None or sample.value != sample.value:
            return ""
        return ": the utility grid is down" if sample.value < 0.5 else ": the PCC switch is open"

    async def _mode_alarms(self, mode: str, image: ProcessImage, ts: datetime) -> None:
        """Raise the alarm of ``mode`` (islanded, blackout), clear the other one."""
        for code, severity in MODE_ALARMS.items():
            active = code in self.mode_alarms
            if (code == mode) == active:
                continue  # raised while in its mode, cleared otherwise: nothing to announce
            if active:
                self.mode_alarms.discard(code)
                text, severity = f"{MODE_TEXT[code]}: cleared, MEG in {mode} mode", "info"
            else:
                self.mode_alarms.add(code)
                text = MODE_TEXT[code] + self._cause(image, mode)
            await announce_alarm(
                self.bus,
                self.store,
                site=self.site,
                source="pcc",
                code=code,
                text=text,
                active=not active,
                ts=ts,
                severity=severity,
            )

    async def _alarms(self, failures: dict[str, str], now: datetime) -> None:
        """Raise an alarm for each newly failing controller; clear it once it runs again."""
        for name, text in failures.items():
            if name not in self.status.alarms:
                self.status.alarms[name] = text
                await self._alarm(name, "controller_failed", text, now, active=True)
        for name in [n for n in self.status.alarms if n not in failures]:
            del self.status.alarms[name]
            await self._alarm(name, "controller_failed", "cleared", now, active=False)

    async def _holds(self, holds: dict[str, str], now: datetime) -> None:
        """Alarm each device newly held at its safe setpoint; clear it once it is not."""
        for device, why in holds.items():
            if device not in self.status.held:
                self.status.held[device] = why
                text = f"held at its safe setpoint: {why}"
                await self._alarm(device, "controller_holds", text, now, active=True)
        for device in [d for d in self.status.held if d not in holds]:
            del self.status.held[device]
            await self._alarm(device, "controller_holds", "inputs good again", now, active=False)

    async def _alarm(
        self, source: str, code: str, text: str, ts: datetime, *, active: bool
    ) -> None:
        await announce_alarm(
            self.bus,
            self.store,
            site=self.site,
            source=source,
            code=code,
            text=text,
            active=active,
            ts=ts,
            severity=("critical" if code == "controller_failed" else "warning")
            if active
            else "info",
        )

    def _update_status(self, image: ProcessImage, now: datetime) -> None:
        s = self.status
        s.ts = now
        for attr, key in (("frequency_hz", "pcc/frequency_hz"), ("import_kw", "pcc/import_kw")):
            sample = image.sample(key)
            if sample is not None:
                setattr(s, attr, sample.value)
        mode = image.sample("pcc/mode")
        if mode is not None and mode.value == mode.value:
            s.mode = MODE_NAMES.get(int(mode.value), "unknown")
        for b in self.batteries:
            sample = image.sample(f"{b}/soc")
            if sample is not None:
                s.soc[b] = sample.value
