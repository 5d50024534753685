"""The write phase of the control cycle: the controllers' setpoints down the wire through the
DER data feeder, written on change and kept alive inside the devices' revert timeout, each write
read back and confirmed or alarmed.

A device that loses the platform reverts by itself when its revert timeout runs out; the
keep-alive rewrites an unchanged setpoint every ``keepalive_s`` (a third of ``revert_s``).
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from openmeg.core.bus import Bus
from openmeg.core.messages import AlarmMessage, CommandResult, alarm_topic
from openmeg.distribution.feeder_commands import SKIPPED, FeederCommands
from openmeg.distribution.writes import Limits


@dataclass(kw_only=True)
class Written:
    value: float
    at: datetime


@dataclass(kw_only=True)
class WriteReport:
    written: int = 0
    confirmed: int = 0
    failed: dict[str, str] = field(default_factory=dict)
    """``device/point`` -> why its write failed."""


class SetpointWriter:
    """Writes setpoints (``device/point`` -> value) for ``site`` through ``feeder``."""

    def __init__(
        self,
        site: str,
        feeder: FeederCommands,
        bus: Bus,
        *,
        limits: Mapping[str, Limits] | None = None,
        revert_s: int = 30,
        tolerance: float = 0.05,
    ) -> None:
        self.site, self.feeder, self.bus = site, feeder, bus
        self.limits = dict(limits or {})
        self.revert_s = revert_s
        self.keepalive = timedelta(seconds=revert_s / 3.0)
        self.tolerance = tolerance
        self.last: dict[str, Written] = {}
        self.failing: dict[str, str] = {}
        self.manual: dict[str, datetime] = {}
        """Points an operator's command holds, until when: the controllers keep off them."""
        self.writes_total = 0

    def _due(self, key: str, value: float, now: datetime) -> bool:
        last = self.last.get(key)
        return (
            last is None
            or key in self.failing
            or abs(value - last.value) > self.tolerance
            or now - last.at >= self.keepalive
        )

    def clip(self, key: str, value: float) -> float:
        """A controller's request within the device's rating (the site file's)."""
        device, point = key.split("/")
        lim = self.limits.get(device)
        if lim is None or point != "p_set_kw":
            return value
        return min(max(value, lim.p_min_kw), lim.p_max_kw)

    def hold(self, key: str, until: datetime) -> None:
        """An operator commands ``key``: no setpoint of the controllers is written to it until
        ``until`` (a write of theirs waiting for the device is called off)."""
        self.manual[key] = until
        self.last.pop(key, None)

    async def write(self, setpoints: Mapping[str, float], now: datetime) -> WriteReport:
        """Write what changed or is due for its keep-alive, all devices at once; points an
        operator holds are left alone."""
        for key in [k for k, until in self.manual.items() if now >= until]:
            del self.manual[key]
        due = {
            k: self.clip(k, v)
            for k, v in setpoints.items()
            if k not in self.manual and self._due(k, self.clip(k, v), now)
        }
        report = WriteReport(written=len(due))
        results = await asyncio.gather(*(self._one(k, v) for k, v in due.items()))
        for (key, value), result in zip(due.items(), results, strict=True):
            if result.reason == SKIPPED:
                report.written -= 1
                continue
            if result.accepted:
                report.confirmed += 1
                self.last[key] = Written(value=value, at=now)
                if key in self.failing:
                    del self.failing[key]
                    await self._alarm(key, "setpoint written and confirmed again", now, False)
            else:
                report.failed[key] = result.reason
                if key not in self.failing:
                    self.failing[key] = result.reason
                    await self._alarm(key, f"setpoint not written: {result.reason}", now, True)
        self.writes_total += report.written
        return report

    async def _one(self, key: str, value: float) -> CommandResult:
        device, point = key.split("/")
        return await self.feeder.command(
            device,
            point,
            value,
            limits=self.limits.get(device),
            revert_s=self.revert_s,
            publish=False,
            skip=lambda: key in self.manual,
        )

    async def _alarm(self, key: str, text: str, now: datetime, active: bool) -> None:
        device = key.split("/")[0]
        await self.bus.publish(
            alarm_topic(self.site, device),
            AlarmMessage(
                site=self.site,
                source=device,
                code="setpoint_failed",
                text=f"{key}: {text}",
                active=active,
                ts=now,
                severity="critical" if active else "info",
            ),
        )
