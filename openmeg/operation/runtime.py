"""The runtime of the operation domain: every cycle it reads the plant's process image, runs the
control cycle, writes the setpoints, publishes every point, persists, and handles commands.

It talks to the plant through ``PlantPort``, the same whether the plant is simulated or real.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from openmeg.core.audit import AuditLog
from openmeg.core.bus import Bus, Subscription
from openmeg.core.errors import CommandError
from openmeg.core.messages import (
    CommandMessage,
    CommandResult,
    ModeChange,
    PointUpdate,
    command_result_topic,
    command_topic,
    mode_topic,
    point_topic,
)
from openmeg.core.points import MODE_NAMES, Point, PointId, PointSpec, unit_of
from openmeg.core.store import Store
from openmeg.operation.alarms import announce_alarm
from openmeg.operation.cycle import ControlCycle


class PlantPort(Protocol):
    """What the runtime needs of a plant."""

    @property
    def time(self) -> datetime: ...

    def read(self) -> dict[str, float]: ...

    def write(self, setpoints: Mapping[str, float]) -> None: ...

    def commandable(self) -> Mapping[str, PointSpec]: ...

    def command(self, point: str, value: float) -> None: ...

    def state(self) -> list[tuple[str, dict[str, Any]]]: ...

    def restore(self, saved: Mapping[str, Mapping[str, Any]]) -> None: ...


class Clock(Protocol):
    async def sleep(self, seconds: float) -> None: ...


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
    commands: int = 0


class Runtime:
    """Cycles one site's plant every ``step_s`` of the clock."""

    def __init__(
        self,
        site: str,
        plant: PlantPort,
        cycle: ControlCycle,
        *,
        clock: Clock,
        bus: Bus,
        store: Store,
        step_s: float = 1.0,
        persist_every_s: float = 60.0,
        domains: Mapping[str, str] | None = None,
        publish: Callable[[str], bool] | None = None,
    ) -> None:
        self.site, self.plant, self.cycle = site, plant, cycle
        self.domains = dict(domains or {})
        self._publishes = publish or (lambda device: True)
        self.clock, self.bus, self.store = clock, bus, store
        self.audit = AuditLog(store)
        self.step_s = step_s
        self.persist_every = max(1, round(persist_every_s / step_s))
        self.status = Status()
        self._commands: Subscription | None = None
        self._mode: float | None = None
        plant.restore(store.load_states(site))

    async def start(self) -> None:
        """Listen for commands on ``meg/<site>/command/#``."""
        self._commands = await self.bus.subscribe(command_topic(self.site, "+", "+"))

    async def step(self) -> None:
        """One control cycle."""
        t0 = time.perf_counter()
        await self._handle_commands()
        result = self.cycle.run(self.plant.read())
        await self._alarms(result.failures)
        self.plant.write(result.setpoints)
        now = self.plant.time
        image = self.plant.read()
        self.status.cycles += 1
        await self._publish(
            {k: v for k, v in image.items() if self._publishes(k.split("/")[0])}, now
        )
        await self._mode_change(image, now)
        self.status.cycle_ms = (time.perf_counter() - t0) * 1000.0
        await self._publish({"cycle/duration_ms": self.status.cycle_ms}, now)
        self._update_status(image, now)
        if self.status.cycles % self.persist_every == 0:
            self.flush()

    def flush(self) -> None:
        """Write the plant's state (what must survive a restart) to the store."""
        self.store.save_states(self.site, self.plant.time, self.plant.state())

    def _points(self, image: Mapping[str, float], ts: datetime) -> list[Point]:
        out = []
        for key, value in image.items():
            device, name = key.split("/")
            pid = PointId(site=self.site, device=device, name=name)
            out.append(Point(id=pid, value=value, unit=unit_of(name), ts=ts))
        return out

    async def _publish(self, image: Mapping[str, float], ts: datetime) -> None:
        for p in self._points(image, ts):
            domain = self.domains.get(p.id.device, "der")
            topic = point_topic(self.site, p.id.device, p.id.name, domain=domain)
            await self.bus.publish(topic, PointUpdate.of(p))

    async def _mode_change(self, image: Mapping[str, float], ts: datetime) -> None:
        mode = image["pcc/mode"]
        if self._mode is not None and mode != self._mode:
            name = MODE_NAMES[int(mode)]
            await self.bus.publish(
                mode_topic(self.site), ModeChange(site=self.site, mode=name, ts=ts)
            )
            self.store.add_event(
                ts=ts,
                site=self.site,
                kind="mode",
                source="pcc",
                code=name,
                text=f"MEG now in {name} mode",
            )
        self._mode = mode

    async def _handle_commands(self) -> None:
        if self._commands is None:
            return
        while self._commands.pending():
            topic, msg = await self._commands.get()
            _, _, _, device, name = topic.split("/")
            if not isinstance(msg, CommandMessage) or (msg.device, msg.name) != (device, name):
                reason = "a command message must name the device and point of its topic"
                await self._command_result(device, name, float("nan"), reason, user="?")
                continue
            try:
                self.plant.command(f"{device}/{name}", msg.value)
            except CommandError as err:
                await self._command_result(device, name, msg.value, str(err), user=msg.user)
                continue
            self.status.commands += 1
            await self._command_result(device, name, msg.value, "", user=msg.user)

    async def _command_result(
        self, device: str, name: str, value: float, reason: str, *, user: str
    ) -> None:
        ts = self.plant.time
        accepted = not reason
        result = CommandResult(
            site=self.site,
            device=device,
            name=name,
            value=value,
            accepted=accepted,
            reason=reason,
            ts=ts,
        )
        await self.bus.publish(command_result_topic(self.site, device, name), result)
        text = f"{user} set {device}/{name} = {value}" + (
            "" if accepted else f": refused, {reason}"
        )
        self.store.add_event(
            ts=ts,
            site=self.site,
            kind="command",
            source=user,
            code="accepted" if accepted else "rejected",
            text=text,
            severity="info" if accepted else "warning",
        )
        self.audit.append(
            ts=ts,
            actor=user,
            action="command",
            target=f"{device}/{name}",
            detail={
                "value": None if value != value else value,
                "accepted": accepted,
                "reason": reason,
            },
        )

    async def _alarms(self, failures: dict[str, str]) -> None:
        """Raise an alarm for each newly failing controller; clear it once it runs again."""
        for name, text in failures.items():
            if name not in self.status.alarms:
                self.status.alarms[name] = text
                await self._alarm(name, text, active=True)
        for name in [n for n in self.status.alarms if n not in failures]:
            del self.status.alarms[name]
            await self._alarm(name, "cleared", active=False)

    async def _alarm(self, source: str, text: str, *, active: bool) -> None:
        await announce_alarm(
            self.bus,
            self.store,
            site=self.site,
            source=source,
            code="controller_failed",
            text=text,
            active=active,
            ts=self.plant.time,
            severity="critical" if active else "info",
        )

    def _update_status(self, image: Mapping[str, float], now: datetime) -> None:
        s = self.status
        s.ts = now
        s.mode = MODE_NAMES[int(image["pcc/mode"])]
        s.frequency_hz = image["pcc/frequency_hz"]
        s.import_kw = image["pcc/import_kw"]
        s.soc = {k.split("/")[0]: v for k, v in image.items() if k.endswith("/soc")}
