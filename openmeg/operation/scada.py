"""SCADA / DER management server (Y.2071 clause 9.4): the live state of every device and switch,
alarms (raised, cleared, acknowledged), operator commands, and the event log in the store."""

from __future__ import annotations

import asyncio
import fnmatch
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from openmeg.core.audit import AuditLog
from openmeg.core.bus import Bus, Subscription, messages, waiting
from openmeg.core.edge import REFUSED_CODE, Edge, Gate, Refused, check_point_topic, check_site
from openmeg.core.messages import (
    AlarmMessage,
    BusMessage,
    CommandResult,
    ModeChange,
    PointUpdate,
    alarm_topic,
)
from openmeg.core.points import Quality
from openmeg.core.site import Site
from openmeg.core.store import Store
from openmeg.operation.alarms import Severity, announce_alarm

FIELD_ALARMS = frozenset({"device_unreachable", "setpoint_failed", REFUSED_CODE})
"""Alarms raised at the wire (by the DER data feeder and the write phase) and at the services'
edges (an input refused): the SCADA logs them."""

PLATFORM_SOURCES = frozenset(
    {"time", "trading", "flisr", "pcc", "self_consumption", "heat_led_chp", "price_trading"}
)
"""Alarm sources of the platform that are no device: time, trading, FLISR and controllers."""


WHY = "; why: "
"""What separates a command event's outcome from the operator's reason for it."""


@dataclass(frozen=True, kw_only=True)
class Limit:
    """An alarm limit on a point name (any device matching ``device``), with a clearing band."""

    point: str
    low: float | None = None
    high: float | None = None
    band: float = 0.0
    severity: Severity = "warning"
    device: str = "*"


DEFAULT_LIMITS = (
    Limit(point="temperature_c", high=80.0, band=2.0),
    Limit(point="vibration_mm_s", high=7.1, band=0.3),  # ISO 10816-3, zone C/D boundary
    Limit(point="noise_db", high=85.0, band=1.0),  # the EU's upper exposure action value
    Limit(point="soc", low=0.12, band=0.02, device="bess-*"),
    Limit(point="voltage_min_pu", low=0.90, band=0.005, severity="critical"),  # EN 50160
    Limit(point="voltage_max_pu", high=1.10, band=0.005, severity="critical"),
    Limit(point="line_loading_max_pct", high=100.0, band=2.0, severity="critical"),
)


@dataclass(kw_only=True)
class Alarm:
    source: str
    code: str
    text: str
    severity: Severity
    raised_at: datetime
    active: bool = True
    acknowledged: bool = False
    acknowledged_by: str = ""
    cleared_at: datetime | None = None

    @property
    def key(self) -> str:
        return f"{self.source}/{self.code}"


@dataclass(kw_only=True)
class LiveValue:
    value: float
    unit: str
    ts: datetime
    quality: Quality


Commander = Callable[[str, str, float], Awaitable[CommandResult]]


def merged_limits(
    overrides: tuple[Limit, ...], defaults: tuple[Limit, ...] = DEFAULT_LIMITS
) -> tuple[Limit, ...]:
    """The defaults, each replaced by an override on the same point and devices, and the
    overrides that replace none."""
    replaced = {(o.point, o.device): o for o in overrides}
    kept = tuple(replaced.pop((d.point, d.device), d) for d in defaults)
    return kept + tuple(replaced.values())


def site_limits(site: Site) -> tuple[Limit, ...]:
    """The limits a site runs with: the built-in ones and its site file's ``alarm_limits``."""
    return merged_limits(
        tuple(
            Limit(
                point=a.point,
                device=a.device,
                low=a.low,
                high=a.high,
                band=a.band,
                severity=a.severity,
            )
            for a in site.alarm_limits
        )
    )


@dataclass(kw_only=True)
class _State:
    values: dict[str, dict[str, LiveValue]] = field(default_factory=dict)
    alarms: dict[str, Alarm] = field(default_factory=dict)
    mode: str = "grid"


class DerManagementServer:
    """Listens to everything of one site on the bus and keeps the operator's picture."""

    def __init__(
        self,
        site: str,
        bus: Bus,
        store: Store,
        *,
        audit: AuditLog,
        limits: tuple[Limit, ...] = DEFAULT_LIMITS,
        commander: Commander | None = None,
        known: Callable[[str], bool] = lambda device: True,
        known_source: Callable[[str], bool] | None = None,
        gate: Gate | None = None,
    ) -> None:
        """``known``: whether a device is one of the site's (points of others are refused);
        ``known_source``: whether an alarm may come from that source (default: a known device
        or a source of the platform, or a service at the edge)."""
        self.site, self.bus, self.store = site, bus, store
        self.known = known
        self.gate = gate or Edge(site).gate("scada")
        self.known_source = known_source or (
            lambda s: known(s) or s in PLATFORM_SOURCES or s in self.gate.edge.services
        )
        self.limits = limits
        self.commander = commander
        self.audit = audit
        self.state = _State()
        self._sub: Subscription | None = None

    async def start(self) -> None:
        self._sub = await self.bus.subscribe(f"meg/{self.site}/#")

    async def stop(self) -> None:
        if self._sub is not None:
            await self.bus.unsubscribe(self._sub)
            self._sub = None

    async def handle(self, msg: BusMessage, topic: str | None = None) -> None:
        """Take one message of the site (that came on ``topic``) into the operator's picture;
        ``Refused`` says why not."""
        if isinstance(msg, PointUpdate | AlarmMessage | ModeChange):
            check_site(msg, self.site)
        if isinstance(msg, PointUpdate):
            if topic is not None:
                check_point_topic(topic, msg)
            if not self.known(msg.device):
                raise Refused("unknown_device", f"{msg.device!r} is no device of this site")
            await self._point(msg)
        elif isinstance(msg, AlarmMessage):
            if not self.known_source(msg.source):
                raise Refused("unknown_source", f"alarm source {msg.source!r} is unknown")
            if topic is not None and topic != alarm_topic(self.site, msg.source):
                raise Refused("wrong_topic", f"an alarm of {msg.source!r} on another's topic")
            self._alarm_seen(msg)
        elif isinstance(msg, ModeChange):
            self.state.mode = msg.mode

    async def take(self, topic: str, msg: BusMessage) -> bool:
        """``handle`` at the edge: whether taken (a refusal is counted and alarmed)."""
        return await self.gate.handle(topic, msg, lambda m: self.handle(m, topic))

    async def pump(self) -> int:
        """Take in everything waiting on the bus; returns how many messages came."""
        n = 0
        while items := waiting(self._sub):
            for topic, msg in items:
                n += 1
                await self.take(topic, msg)
        return n

    async def run(self, stop: asyncio.Event) -> None:
        """Take in what arrives until ``stop`` is set."""
        if self._sub is None:
            return
        async for topic, msg in messages(self._sub, stop):
            await self.take(topic, msg)

    async def _point(self, msg: PointUpdate) -> None:
        device = self.state.values.setdefault(msg.device, {})
        value = msg.value
        device[msg.name] = LiveValue(
            value=float("nan") if value is None else value,
            unit=msg.unit,
            ts=msg.ts,
            quality=msg.quality,
        )
        if value is None or msg.quality is not Quality.GOOD:
            return
        for limit in self.limits:
            if limit.point != msg.name or not fnmatch.fnmatchcase(msg.device, limit.device):
                continue
            for side, bound in (("high", limit.high), ("low", limit.low)):
                if bound is None:
                    continue
                key = f"{msg.device}/{msg.name}_{side}"
                outside = value > bound if side == "high" else value < bound
                back = (
                    value <= bound - limit.band if side == "high" else value >= bound + limit.band
                )
                active = key in self.state.alarms and self.state.alarms[key].active
                if outside and not active:
                    where = "above" if side == "high" else "below"
                    text = f"{msg.name} {value:.3g} {msg.unit} is {where} {bound:g}"
                    await self._raise(
                        msg.device, f"{msg.name}_{side}", text, limit.severity, msg.ts
                    )
                elif active and back:
                    await self._clear(msg.device, f"{msg.name}_{side}", msg.ts)

    async def _raise(
        self, source: str, code: str, text: str, severity: Severity, ts: datetime
    ) -> None:
        self.state.alarms[f"{source}/{code}"] = Alarm(
            source=source, code=code, text=text, severity=severity, raised_at=ts
        )
        await announce_alarm(
            self.bus,
            self.store,
            site=self.site,
            source=source,
            code=code,
            text=text,
            active=True,
            ts=ts,
            severity=severity,
        )

    async def _clear(self, source: str, code: str, ts: datetime) -> None:
        alarm = self.state.alarms[f"{source}/{code}"]
        alarm.active = False
        alarm.cleared_at = ts
        await announce_alarm(
            self.bus,
            self.store,
            site=self.site,
            source=source,
            code=code,
            text=f"{alarm.text}: cleared",
            active=False,
            ts=ts,
            severity="info",
        )

    def _alarm_seen(self, msg: AlarmMessage) -> None:
        """Alarms raised elsewhere (feeder, control cycle), and the echo of our own."""
        key = f"{msg.source}/{msg.code}"
        known = self.state.alarms.get(key)
        changes = msg.active != (known is not None and known.active)
        if changes and msg.code in FIELD_ALARMS:
            self.store.add_event(
                ts=msg.ts,
                site=self.site,
                kind="alarm" if msg.active else "alarm_clear",
                source=msg.source,
                code=msg.code,
                text=msg.text,
                severity=msg.severity,
            )
        if msg.active:
            if known is None or not known.active:
                self.state.alarms[key] = Alarm(
                    source=msg.source,
                    code=msg.code,
                    text=msg.text,
                    severity=msg.severity,
                    raised_at=msg.ts,
                )
        elif known is not None and known.active:
            known.active = False
            known.cleared_at = msg.ts

    def acknowledge(self, key: str, *, user: str, ts: datetime) -> Alarm:
        """Acknowledge an alarm by ``source/code``; ``KeyError`` names the alarms there are."""
        alarm = self.state.alarms.get(key)
        if alarm is None:
            raise KeyError(
                f"no alarm {key!r}; alarms: {', '.join(sorted(self.state.alarms)) or 'none'}"
            )
        if not alarm.acknowledged:
            alarm.acknowledged = True
            alarm.acknowledged_by = user
            self.store.add_event(
                ts=ts,
                site=self.site,
                kind="alarm_ack",
                source=alarm.source,
                code=alarm.code,
                text=f"acknowledged by {user}",
            )
        return alarm

    def alarms(self, *, active_only: bool = False) -> list[Alarm]:
        return [a for a in self.state.alarms.values() if a.active or not active_only]

    async def command(
        self, device: str, point: str, value: float, *, user: str, ts: datetime, reason: str = ""
    ) -> CommandResult:
        """An operator command, carried out by the field (the DER data feeder) and logged with
        who gave it and why (``reason``, if given)."""
        if self.commander is None:
            result = CommandResult(
                site=self.site,
                device=device,
                name=point,
                value=value,
                accepted=False,
                reason="no field connection for commands",
                ts=ts,
            )
        else:
            result = await self.commander(device, point, value)
        verdict = "done" if result.accepted else f"refused: {result.reason}"
        why = " ".join(reason.split())
        if why:
            verdict += f"{WHY}{why}"
        self.store.add_event(
            ts=ts,
            site=self.site,
            kind="command",
            source=user,
            code="accepted" if result.accepted else "rejected",
            text=f"{user} set {device}/{point} = {value}: {verdict}",
            severity="info" if result.accepted else "warning",
        )
        self.audit.append(
            ts=ts,
            actor=user,
            action="command" if result.accepted else "command_refused",
            target=f"{device}/{point}"[:256],
            detail={
                "value": value,
                "accepted": result.accepted,
                "reason": result.reason,
                **({"why": why} if why else {}),
            },
        )
        return result

    def snapshot(self) -> dict[str, Any]:
        """The operator's picture: mode, every device's latest values, the alarms."""
        return {
            "mode": self.state.mode,
            "devices": {
                d: {n: v.value for n, v in pts.items()} for d, pts in self.state.values.items()
            },
            "alarms": [a.key for a in self.alarms(active_only=True)],
        }
