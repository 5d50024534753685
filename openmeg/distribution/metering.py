"""The head-end as a service of the platform: it takes the meters' register values from the bus,
closes 15-minute intervals as the clock passes their boundaries, and publishes the readings it
closes on the bus for the MDMS, for the customers' meters and for the power devices' own meters
alike: at each boundary one columnar ``ReadingsBatch`` of all the meters (``batch_readings_topic``),
the shape a head-end of thousands of meters sends. The register values at each boundary go to
the MDMS's register store through ``record_registers``. A register value the head-end refuses
(an unknown meter, not a number, negative, going back, or rising faster than the meter can
measure) is counted at the service's edge and its interval is not reported."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Set
from contextlib import aclosing
from datetime import datetime

import pandas as pd

from openmeg.core.bus import Bus, Subscription, cycle_beats, waiting
from openmeg.core.clock import Clock
from openmeg.core.edge import Edge, Gate, check_site
from openmeg.core.messages import (
    READINGS_MAX,
    BusMessage,
    MeterReadings,
    PointUpdate,
    ReadingsBatch,
    ReadRequest,
    batch_readings_topic,
    read_request_topic,
)
from openmeg.core.store import as_utc
from openmeg.distribution.head_end import DEVICE_REGISTERS, HeadEnd
from openmeg.distribution.outbox import Outbox, Send
from openmeg.distribution.reread import read_again

RegisterReads = list[tuple[str, str, datetime, float]]
"""``(meter, channel, read_at, kWh)``: a register's value at a boundary."""

ReadRegisters = Callable[[str, str, datetime, datetime], Awaitable[pd.Series]]
"""``(meter, channel, start, end)`` -> the register values recorded, by instant."""

REGISTER_TOPICS = ("customer/+/+", "+/+/energy_kwh", "+/+/energy_in_kwh")
"""Where meter registers travel, under ``meg/<site>/``."""


MAX_READINGS = READINGS_MAX
"""Readings a message at most (about 250 kB of JSON: under the broker's packet limit)."""


def columnar(site: str, closed: list[MeterReadings]) -> list[ReadingsBatch]:
    """The readings of ``closed`` in columnar messages of at most ``MAX_READINGS``."""
    if not closed:
        return []
    rows = [(b.meter, b.channel, r) for b in closed for r in b.readings]
    return [
        ReadingsBatch(
            site=site,
            meter=[m for m, _, _ in part],
            channel=[c for _, c, _ in part],
            interval_start=[r.interval_start for _, _, r in part],
            value_kwh=[r.value_kwh for _, _, r in part],
        )
        for part in (rows[i : i + MAX_READINGS] for i in range(0, len(rows), MAX_READINGS))
    ]


class MeteringService:
    """Customer meters (``meters``) and devices' own meters (``device_meters``) of one site."""

    def __init__(
        self,
        site: str,
        bus: Bus,
        clock: Clock,
        *,
        meters: Set[str],
        device_meters: Set[str],
        record_registers: Callable[[RegisterReads], Awaitable[object]],
        max_kw: float | None = None,
        known: Set[str] | None = None,
        gate: Gate | None = None,
        outbox: Outbox | None = None,
        send: Send | None = None,
        read_registers: ReadRegisters | None = None,
    ) -> None:
        """``max_kw``: the largest power any meter measures; ``known``: every device of the
        site (their registers that are no meter's are passed over, not refused). ``outbox``:
        where readings wait until the broker took them (store-and-forward); ``send``: how they
        go out (default: published on ``bus``); ``read_registers``: the register values
        recorded at the boundaries, to answer the MDMS's read requests."""
        self.site, self.bus, self.clock = site, bus, clock
        everyone = None if known is None else set(known) | set(meters) | set(device_meters)
        self.head_end = HeadEnd(site, set(meters), max_kw=max_kw, known=everyone)
        self.device_meters = HeadEnd(
            site, set(device_meters), registers=DEVICE_REGISTERS, max_kw=max_kw, known=everyone
        )
        self.gate = gate or Edge(site).gate("head_end")
        self.read_registers = read_registers
        self.answered = 0
        self.retry_s, self._retry_at = 2.0, 0.0
        self.outbox = outbox
        self.send: Send = send if send is not None else bus.publish
        self.record_registers = record_registers
        self.published = 0
        self._subs: list[Subscription] = []
        self._requests: Subscription | None = None

    async def start(self) -> None:
        self._subs = [
            await self.bus.subscribe(f"meg/{self.site}/{pattern}") for pattern in REGISTER_TOPICS
        ]
        self._requests = await self.bus.subscribe(read_request_topic(self.site, "+"))

    async def stop(self) -> None:
        for sub in [*self._subs, *([self._requests] if self._requests else [])]:
            await self.bus.unsubscribe(sub)
        self._subs, self._requests = [], None

    def handle(self, msg: BusMessage, now: datetime | None = None) -> None:
        """Take one register value arriving at ``now`` (anything else on those topics is
        passed over); ``Refused`` says why not."""
        if isinstance(msg, PointUpdate):
            check_site(msg, self.site)
            self.head_end.observe(msg, now)
            self.device_meters.observe(msg, now)

    async def _take(self, items: list[tuple[str, BusMessage]], now: datetime) -> None:
        async def take(msg: BusMessage) -> None:
            self.handle(msg, now)

        for topic, msg in items:
            await self.gate.handle(topic, msg, take)

    async def tick(self, now: datetime) -> list[MeterReadings]:
        """At ``now``: the intervals closed, published for the MDMS; the registers recorded."""
        closed = self.head_end.tick(now) + self.device_meters.tick(now)
        reads: RegisterReads = []
        for head in (self.head_end, self.device_meters):
            reads += head.register_reads
            head.register_reads.clear()
        for batch in columnar(self.site, closed):  # a message for all the meters at once
            if self.outbox is None:
                await self.send(batch_readings_topic(self.site), batch)
            else:
                await self.store_in_outbox(batch, now)
        if self.outbox is not None and (closed or self.outbox.blocked):
            await self.forward(retry=not closed)
        self.published += len(closed)
        if reads:
            await self.record_registers(reads)
        return closed

    async def store_in_outbox(self, batch: ReadingsBatch, now: datetime) -> None:
        assert self.outbox is not None
        topic = batch_readings_topic(self.site)
        await self.outbox.store.in_thread(self.outbox.put, topic, batch, now)

    async def forward(self, *, retry: bool = False) -> int:
        """Send what waits in the outbox, oldest first (store-and-forward); ``retry``: only
        if ``retry_s`` passed since the last try that failed."""
        if self.outbox is None:
            return 0
        if retry and time.monotonic() < self._retry_at:
            return 0
        sent = await self.outbox.forward(self.send)
        self._retry_at = time.monotonic() + self.retry_s if self.outbox.blocked else 0.0
        return sent

    async def answer(self, request: ReadRequest) -> MeterReadings | None:
        """Read a meter channel again from its registers at the boundaries; the readings
        sent (store-and-forward), ``None`` when the registers give none."""
        if self.read_registers is None or request.site != self.site:
            return None
        registers = await self.read_registers(
            request.meter, request.channel, as_utc(request.start), as_utc(request.end)
        )
        found = read_again(request, registers)
        if found is None:
            return None
        for batch in columnar(self.site, [found]):
            if self.outbox is None:
                await self.send(batch_readings_topic(self.site), batch)
            else:
                await self.store_in_outbox(batch, self.clock.now())
        await self.forward()
        self.answered += 1
        return found

    async def _take_requests(self) -> None:
        for _, msg in waiting(self._requests):
            if isinstance(msg, ReadRequest):
                await self.answer(msg)

    async def pump(self) -> list[MeterReadings]:
        """Take the register values waiting, then close what the clock's time closes, then
        answer the read requests waiting."""
        now = self.clock.now()
        for sub in self._subs:
            await self._take(waiting(sub), now)
        closed = await self.tick(now)
        await self._take_requests()
        return closed

    async def run(self, stop: asyncio.Event) -> None:
        """At each beat of the control cycle, until ``stop`` is set: the register values that
        arrived (in their order), then the intervals the cycle's instant closes."""
        async with aclosing(cycle_beats(self.bus, self.site, stop)) as beats:
            async for ts in beats:
                for sub in self._subs:
                    await self._take(waiting(sub), ts)
                await self.tick(ts)
                await self._take_requests()
