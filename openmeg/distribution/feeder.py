"""The DER data feeder (Y.2071 clause 10.2, Appendix IV): between the slave devices and the DER
management server, it delivers only the subscribed data that changed.

Steps of Appendix IV: (1) master connections to every slave and the server's subscriptions;
(2) polling of the slaves' registers, coalesced into few reads, each point at its own interval;
(3) a hash of each collected item kept in a hash table, item -> (value, hash); (4) the change
check of subscribed items against what was last delivered, with deadbands; (5) the changed
items read from the table; (6) converted (SunSpec scale factors, units, the bus schema);
(7) delivered on the bus at once. A full snapshot goes out periodically. Commands travel the
other way and are acknowledged, or failed with the device's answer.
"""

from __future__ import annotations

import fnmatch
import struct
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Protocol

from openmeg.core.bus import Bus
from openmeg.core.errors import CommandError, DeviceError
from openmeg.core.messages import (
    AlarmMessage,
    CommandResult,
    PointUpdate,
    alarm_topic,
    command_result_topic,
    point_topic,
)
from openmeg.core.points import Quality, unit_of
from openmeg.distribution.coalesce import coalesce
from openmeg.distribution.discovery import Discovered, PointAddress, discover
from openmeg.distribution.writes import Limits, plan_writes
from openmeg.protocols.modbus import ModbusMaster
from openmeg.protocols.sunspec import decode_raw


class Clock(Protocol):
    def now(self) -> datetime: ...


@dataclass(frozen=True, kw_only=True)
class Subscription:
    """The server wants ``device/point`` (shell patterns), polled every ``interval_s``, delivered
    when it moves by at least ``deadband`` (in the point's unit)."""

    device: str = "*"
    point: str = "*"
    deadband: float = 0.0
    interval_s: float = 1.0

    def matches(self, device: str, point: str) -> bool:
        return fnmatch.fnmatchcase(device, self.device) and fnmatch.fnmatchcase(point, self.point)


@dataclass(kw_only=True)
class Item:
    """One entry of the hash table: the value collected last, its hash, and what was delivered."""

    value: float | None = None
    digest: int | None = None
    delivered_value: float | None = None
    delivered_digest: int | None = None
    polled_at: datetime | None = None


@dataclass(kw_only=True)
class Link:
    """The master connection to one slave and how it has been answering."""

    device: Discovered
    failures: int = 0
    unreachable: bool = False
    next_try: datetime | None = None


@dataclass(kw_only=True)
class PollReport:
    reads: int = 0
    collected: int = 0
    delivered: int = 0
    failed_devices: list[str] = field(default_factory=list)


class DerDataFeeder:
    """Polls the slaves, keeps the hash table, delivers changed subscribed items on the bus."""

    def __init__(
        self,
        site: str,
        bus: Bus,
        clock: Clock,
        *,
        poll_period_s: float = 1.0,
        snapshot_every_s: float = 300.0,
        max_gap: int = 8,
        fail_after: int = 3,
        backoff_max_s: float = 60.0,
        domains: dict[str, str] | None = None,
    ) -> None:
        self.site, self.bus, self.clock = site, bus, clock
        self.poll_period_s = poll_period_s
        self.snapshot_every = timedelta(seconds=snapshot_every_s)
        self.max_gap = max_gap
        self.fail_after = fail_after
        self.backoff_max_s = backoff_max_s
        self.domains = dict(domains or {})
        self.links: dict[str, Link] = {}
        self.subscriptions: list[Subscription] = []
        self.table: dict[str, Item] = {}
        self._last_snapshot: datetime | None = None
        self.delivered_total = 0
        self.listeners: list[Callable[[PointUpdate], None]] = []
        """Called with every update as it is delivered (the control cycle's process image)."""

    # step 1: master connections and subscriptions
    async def add(
        self, host: str, port: int, unit: int, *, device_id: str | None = None
    ) -> Discovered:
        """Connect to a device by address only, discover it, and start polling it; its id is
        ``device_id`` (the site file's) or else its serial number."""
        master = ModbusMaster(host, port, unit)
        try:
            device = await discover(master)
        except DeviceError:
            master.close()
            raise
        if device_id is not None:
            device = replace(device, id=device_id)
        if device.id in self.links:
            master.close()
            raise DeviceError(f"device {device.id!r} is already connected")
        self.links[device.id] = Link(device=device)
        return device

    def subscribe(self, subscription: Subscription) -> None:
        self.subscriptions.append(subscription)

    def _interval_s(self, device: str, point: str) -> float | None:
        hits = [s.interval_s for s in self.subscriptions if s.matches(device, point)]
        return min(hits) if hits else None

    def _deadband(self, device: str, point: str) -> float:
        hits = [s.deadband for s in self.subscriptions if s.matches(device, point)]
        return min(hits) if hits else 0.0

    # steps 2-7
    async def poll(self) -> PollReport:
        """One pass over every device whose points are due."""
        now = self.clock.now()
        report = PollReport()
        snapshot = self._last_snapshot is None or now - self._last_snapshot >= self.snapshot_every
        for device_id, link in self.links.items():
            if link.next_try is not None and now < link.next_try:
                continue
            due = self._due(link, now)
            if not due:
                continue
            try:
                regs = await self._collect(link, due, report)
            except DeviceError as err:
                await self._failed(link, now, str(err))
                report.failed_devices.append(device_id)
                continue
            await self._answered(link, now)
            for p in due:
                self._hash(device_id, p, regs, now)
                report.collected += 1
        for key, item in self.table.items():
            device, point = key.split("/")
            if self._interval_s(device, point) is None:
                continue
            if snapshot or self._changed(item, self._deadband(device, point)):
                await self._deliver(device, point, item, now)
                report.delivered += 1
        if snapshot:
            self._last_snapshot = now
        self.delivered_total += report.delivered
        return report

    def _due(self, link: Link, now: datetime) -> list[PointAddress]:
        out = []
        for p in link.device.points:
            interval = self._interval_s(link.device.id, p.point)
            if interval is None or p.point == "p_set_kw":
                continue
            item = self.table.get(f"{link.device.id}/{p.point}")
            if (
                item is None
                or item.polled_at is None
                or (now - item.polled_at).total_seconds() >= interval - 1e-9
            ):
                out.append(p)
        return out

    async def _collect(
        self, link: Link, due: list[PointAddress], report: PollReport
    ) -> dict[int, int]:
        spans = [(p.address, p.size) for p in due]
        spans += [(p.sf_address, 1) for p in due if p.sf_address is not None]
        regs: dict[int, int] = {}
        for start, count in coalesce(spans, max_gap=self.max_gap):
            values = await link.device.master.read(start, count)
            report.reads += 1
            regs.update(zip(range(start, start + count), values, strict=True))
        return regs

    def _hash(self, device: str, p: PointAddress, regs: dict[int, int], now: datetime) -> None:
        raw_regs = [regs[a] for a in range(p.address, p.address + p.size)]
        sf_reg = regs[p.sf_address] if p.sf_address is not None else 0
        digest = zlib.crc32(struct.pack(f">{len(raw_regs) + 1}H", *raw_regs, sf_reg))
        item = self.table.setdefault(f"{device}/{p.point}", Item())
        item.polled_at = now
        if digest == item.digest:
            return
        raw = decode_raw(p.type, raw_regs)
        sf = decode_raw("sunssf", [sf_reg]) if p.sf_address is not None else 0
        if raw is None or isinstance(raw, str) or sf is None or isinstance(sf, str):
            item.value = None
        else:
            item.value = raw * 10.0**sf * p.factor
        item.digest = digest

    @staticmethod
    def _changed(item: Item, deadband: float) -> bool:
        if item.digest == item.delivered_digest:
            return False
        if item.delivered_value is None or item.value is None or deadband <= 0:
            return True
        return abs(item.value - item.delivered_value) >= deadband

    async def _deliver(self, device: str, point: str, item: Item, now: datetime) -> None:
        quality = Quality.GOOD if item.value is not None else Quality.INVALID
        link = self.links.get(device)
        if link is not None and link.unreachable:
            quality = Quality.STALE
        msg = PointUpdate(
            site=self.site,
            device=device,
            name=point,
            value=item.value if item.value is not None else float("nan"),
            unit=unit_of(point),
            ts=now,
            quality=quality,
        )
        for listener in self.listeners:
            listener(msg)
        topic = point_topic(self.site, device, point, domain=self.domains.get(device, "der"))
        await self.bus.publish(topic, msg)
        item.delivered_value = item.value
        item.delivered_digest = item.digest

    async def _failed(self, link: Link, now: datetime, reason: str) -> None:
        link.failures += 1
        if link.failures >= self.fail_after:
            backoff = min(
                self.backoff_max_s, self.poll_period_s * 2 ** (link.failures - self.fail_after + 1)
            )
            link.next_try = now + timedelta(seconds=backoff)
            if not link.unreachable:
                link.unreachable = True
                await self._alarm(link, now, active=True, text=f"device unreachable: {reason}")

    async def _answered(self, link: Link, now: datetime) -> None:
        if link.unreachable:
            await self._alarm(link, now, active=False, text="device answers again")
            for p in link.device.points:  # delivered stale: deliver again, good
                item = self.table.get(f"{link.device.id}/{p.point}")
                if item is not None:
                    item.delivered_digest = None
        link.failures = 0
        link.unreachable = False
        link.next_try = None

    async def _alarm(self, link: Link, now: datetime, *, active: bool, text: str) -> None:
        msg = AlarmMessage(
            site=self.site,
            source=link.device.id,
            code="device_unreachable",
            text=text,
            active=active,
            ts=now,
            severity="critical" if active else "info",
        )
        await self.bus.publish(alarm_topic(self.site, link.device.id), msg)

    # commands, the other way
    async def command(
        self,
        device: str,
        point: str,
        value: float,
        *,
        user: str = "system",
        limits: Limits | None = None,
        revert_s: int = 0,
        publish: bool = True,
    ) -> CommandResult:
        """Write a point on a device and read it back; the result says confirmed, or why it
        failed (refused before writing, refused by the device, or not read back as written).
        With ``publish`` the result goes on the bus too (an operator's command)."""
        now = self.clock.now()
        reason = ""
        try:
            await self._write(device, point, value, limits=limits, revert_s=revert_s)
        except (CommandError, DeviceError) as err:
            reason = str(err)
        result = CommandResult(
            site=self.site,
            device=device,
            name=point,
            value=value if value == value else 0.0,
            accepted=not reason,
            reason=reason,
            ts=now,
        )
        if publish:
            await self.bus.publish(command_result_topic(self.site, device, point), result)
        return result

    async def _write(
        self, device: str, point: str, value: float, *, limits: Limits | None, revert_s: int
    ) -> None:
        link = self.links.get(device)
        if link is None:
            raise CommandError(
                f"unknown device {device!r}; connected: {', '.join(sorted(self.links))}"
            )
        plan = plan_writes(link.device, point, value, limits=limits, revert_s=revert_s)
        master = link.device.master
        for address, regs in plan.writes:
            await master.write(address, regs)
        back: dict[int, int] = {}
        for address, count in plan.readback:
            regs = await master.read(address, count)
            back.update(zip(range(address, address + count), regs, strict=True))
        if not plan.confirms(back):
            raise CommandError(f"{device}/{point}: the device does not hold what was written")

    def close(self) -> None:
        for link in self.links.values():
            link.device.master.close()
