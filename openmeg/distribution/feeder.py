"""The DER data feeder (Y.2071 clause 10.2, Appendix IV): between the slave devices and the DER
management server, it delivers only the subscribed data that changed.

Steps of Appendix IV: (1) master connections to every slave and the server's subscriptions;
(2) polling of the slaves' registers, coalesced into few reads, each point at its own interval;
(3) a hash of each collected item kept in a hash table, item -> (value, hash); (4) the change
check of subscribed items against what was last delivered, with deadbands; (5) the changed
items read from the table; (6) converted (SunSpec scale factors, units, the bus schema);
(7) delivered on the bus at once. A full snapshot goes out periodically. Commands travel the
other way and are acknowledged, or failed with the device's answer.

One cycle polls every due device at once and waits at most ``deadline_fraction`` of the poll
period: a device that has not answered by then, or failed, is failed for the cycle; after
``fail_after`` failures in a row its points are delivered stale, it is alarmed and backed off.
A device's changes go on the bus as soon as its answer is in.
"""

from __future__ import annotations

import asyncio
import fnmatch
import math
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Protocol

from openmeg.core.bus import Bus
from openmeg.core.errors import DeviceError
from openmeg.core.messages import (
    VALUE_MAX,
    AlarmMessage,
    PointUpdate,
    alarm_topic,
    point_topic,
)
from openmeg.core.points import Quality, unit_of
from openmeg.distribution.discovery import Discovered, discover
from openmeg.distribution.feeder_commands import FeederCommands
from openmeg.distribution.poll_cycle import PollCycle
from openmeg.distribution.poll_plan import Item, ReadPlan, Route, plan, route
from openmeg.protocols.modbus import ModbusMaster

__all__ = ["DerDataFeeder", "Item", "Link", "PollReport", "Subscription"]


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
class Link:
    """The master connection to one slave and how it has been answering."""

    device: Discovered
    failures: int = 0
    unreachable: bool = False
    next_try: datetime | None = None
    routes: list[Route] = field(default_factory=list)
    plans: dict[tuple[int, ...], ReadPlan] = field(default_factory=dict)
    last_plan: ReadPlan | None = None  # the reads of its last answer
    every_s: float | None = None  # the interval all its routes share, if they share one
    due_at: float = -math.inf  # when a route is next due (seconds since the first poll)


@dataclass(kw_only=True)
class PollReport:
    reads: int = 0
    collected: int = 0
    delivered: int = 0
    failed_devices: list[str] = field(default_factory=list)
    duration_ms: float = 0.0


class DerDataFeeder(FeederCommands):
    """Polls the slaves, keeps the hash table, delivers changed subscribed items on the bus."""

    def __init__(
        self,
        site: str,
        bus: Bus,
        clock: Clock,
        *,
        poll_period_s: float = 1.0,
        deadline_fraction: float = 0.5,
        snapshot_every_s: float = 300.0,
        max_gap: int = 8,
        fail_after: int = 3,
        backoff_max_s: float = 60.0,
        domains: dict[str, str] | None = None,
    ) -> None:
        """``deadline_fraction``: how much of ``poll_period_s`` (wall-clock seconds) one cycle
        waits for the devices' answers, above 0 and at most 1."""
        if not 0.0 < deadline_fraction <= 1.0:
            raise ValueError(
                f"deadline_fraction {deadline_fraction} is outside (0, 1]: give the share of "
                "the poll period a cycle may wait for the devices, e.g. 0.5"
            )
        self.site, self.bus, self.clock = site, bus, clock
        self.poll_period_s = poll_period_s
        self.deadline_s = deadline_fraction * poll_period_s
        self.snapshot_every = timedelta(seconds=snapshot_every_s)
        self.max_gap = max_gap
        self.fail_after = fail_after
        self.backoff_max_s = backoff_max_s
        self.domains = dict(domains or {})
        self.links: dict[str, Link] = {}
        self.subscriptions: list[Subscription] = []
        self.table: dict[str, Item] = {}
        self._last_snapshot: datetime | None = None
        self._routed = False
        self._epoch: datetime | None = None
        self.delivered_total = 0
        self.writes_sent: Counter[str] = Counter()
        self.write_locks: dict[str, asyncio.Lock] = {}
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
        self._routed = False
        return device

    def subscribe(self, subscription: Subscription) -> None:
        self.subscriptions.append(subscription)
        self._routed = False

    def _route(self) -> None:
        """Resolve the subscriptions once per change: each link's subscribed points."""
        for device_id, link in self.links.items():
            link.routes, link.plans, link.due_at = [], {}, -math.inf
            domain = self.domains.get(device_id, "der")
            for p in link.device.points:
                hits = [s for s in self.subscriptions if s.matches(device_id, p.point)]
                if not hits or p.point == "p_set_kw":
                    continue
                key = f"{device_id}/{p.point}"
                link.routes.append(
                    route(
                        p,
                        key=key,
                        topic=point_topic(self.site, device_id, p.point, domain=domain),
                        unit=unit_of(p.point),
                        interval_s=min(s.interval_s for s in hits),
                        deadband=min(s.deadband for s in hits),
                        item=self.table.get(key) or Item(),
                    )
                )
            intervals = {r.interval_s for r in link.routes}
            link.every_s = intervals.pop() if len(intervals) == 1 else None
        self._routed = True

    # steps 2-7
    async def poll(self) -> PollReport:
        """One cycle: every device whose points are due, at once, within the deadline."""
        started = time.perf_counter()
        if not self._routed:
            self._route()
        now = self.clock.now()
        if self._epoch is None:
            self._epoch = now
        now_s = (now - self._epoch).total_seconds()  # small: exact to the microsecond
        report = PollReport()
        snapshot = self._last_snapshot is None or now - self._last_snapshot >= self.snapshot_every
        cycle = PollCycle(self.deadline_s)
        for link in self.links.values():
            if now_s < link.due_at - 1e-6 or (link.next_try is not None and now < link.next_try):
                continue
            if link.every_s is not None:  # polled together: all due at once
                due = tuple(range(len(link.routes)))
            else:
                due = tuple(
                    i
                    for i, r in enumerate(link.routes)
                    if r.polled_s is None or now_s - r.polled_s >= r.interval_s - 1e-6
                )
            if not due:
                continue
            read_plan = link.plans.get(due)
            if read_plan is None:
                routes = [link.routes[i] for i in due]
                read_plan = link.plans[due] = plan(routes, max_gap=self.max_gap)
            cycle.read(link, read_plan)
        while answers := await cycle.answers():
            for link, read_plan, data in answers:
                await self._collected(link, read_plan, data, now, now_s, snapshot, report)
        report.reads = cycle.reads
        for link, reason in cycle.failed:
            report.failed_devices.append(link.device.id)
            await self._failed(link, now, reason, report)
        if cycle.errors:
            raise cycle.errors[0]
        if snapshot:
            for link in self.links.values():
                for r in link.routes:
                    if r.item.digest is not None:
                        await self._deliver(link, r, now, report)
            self._last_snapshot = now
        self.delivered_total += report.delivered
        report.duration_ms = (time.perf_counter() - started) * 1000.0
        return report

    async def _collected(
        self,
        link: Link,
        read_plan: ReadPlan,
        answers: list[bytes],
        now: datetime,
        now_s: float,
        snapshot: bool,
        report: PollReport,
    ) -> None:
        """Steps 3-7 for the answers of one device."""
        report.collected += len(read_plan.slices)
        recovered = link.unreachable
        if link.unreachable or link.failures:
            await self._answered(link, now)
        if link.last_plan is not read_plan:  # another set of points was read since
            read_plan.last = []
            link.last_plan = read_plan
        changed = self._hash(read_plan, answers, now, now_s)
        if link.every_s is not None:
            link.due_at = now_s + link.every_s
        else:
            link.due_at = min(
                -math.inf if r.polled_s is None else r.polled_s + r.interval_s for r in link.routes
            )
        if snapshot:
            return
        for r in link.routes if recovered else changed:  # recovered: stale ones good again
            if r.item.digest is not None and self._changed(link, r):
                await self._deliver(link, r, now, report)

    @staticmethod
    def _quality(link: Link, item: Item) -> Quality:
        if link.unreachable:
            return Quality.STALE
        return Quality.GOOD if item.value is not None else Quality.INVALID

    def _changed(self, link: Link, r: Route) -> bool:
        """Step 4: whether an item differs from what was delivered by its deadband or more."""
        item = r.item
        if self._quality(link, item) is not item.delivered_quality:
            return True
        if item.digest == item.delivered_digest:
            return False
        if item.delivered_value is None or item.value is None or r.deadband <= 0:
            return True
        return abs(item.value - item.delivered_value) >= r.deadband

    def _hash(
        self, read_plan: ReadPlan, answers: list[bytes], now: datetime, now_s: float
    ) -> list[Route]:
        """Steps 3-6: the routes whose registers changed, their values decoded and stored."""
        if answers == read_plan.last:  # nothing moved on this device: no point to look at
            for s in read_plan.slices:
                s.route.polled_s = now_s
                s.route.item.polled_at = now
            return []
        read_plan.last = answers
        changed = []
        for s in read_plan.slices:
            r, item = s.route, s.route.item
            r.polled_s = now_s
            item.polled_at = now
            raw = answers[s.read][s.start : s.end]
            sf = answers[s.sf_read][s.sf_start : s.sf_start + 2] if s.sf_read >= 0 else b""
            digest = raw + sf
            if digest == item.digest:
                continue
            if item.digest is None:
                self.table[r.key] = item
            value = r.decode(raw, sf)
            item.value = value if value is None or abs(value) <= VALUE_MAX else None
            item.digest = digest
            changed.append(r)
        return changed

    async def _deliver(self, link: Link, r: Route, now: datetime, report: PollReport) -> None:
        """Step 7 for one item, when it changed beyond its deadband, changed quality, or a
        snapshot is due (called with every item then)."""
        item = r.item
        quality = self._quality(link, item)
        msg = PointUpdate(
            site=self.site,
            device=link.device.id,
            name=r.point.point,
            value=item.value,
            unit=r.unit,
            ts=now,
            quality=quality,
        )
        for listener in self.listeners:
            listener(msg)
        await self.bus.publish(r.topic, msg)
        item.delivered_value = item.value
        item.delivered_digest = item.digest
        item.delivered_quality = quality
        report.delivered += 1

    async def _failed(self, link: Link, now: datetime, reason: str, report: PollReport) -> None:
        link.failures += 1
        if link.failures >= self.fail_after:
            backoff = min(
                self.backoff_max_s, self.poll_period_s * 2 ** (link.failures - self.fail_after + 1)
            )
            link.next_try = now + timedelta(seconds=backoff)
            if not link.unreachable:
                link.unreachable = True
                await self._alarm(link, now, active=True, text=f"device unreachable: {reason}")
                for r in link.routes:  # its last values, marked stale
                    if r.item.digest is not None and r.item.delivered_quality != Quality.STALE:
                        await self._deliver(link, r, now, report)

    async def _answered(self, link: Link, now: datetime) -> None:
        was_unreachable = link.unreachable
        link.failures = 0
        link.unreachable = False
        link.next_try = None
        if was_unreachable:
            await self._alarm(link, now, active=False, text="device answers again")

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

    def close(self) -> None:
        for link in self.links.values():
            link.device.master.close()
