"""The head-end as a service of the platform: it takes the meters' register values from the bus,
closes 15-minute intervals as the clock passes their boundaries, and publishes the readings it
closes on the bus for the MDMS (``readings_topic``), for the customers' meters and for the
power devices' own meters alike. The register values at each boundary go to the MDMS's
register store through ``record_registers``. A register value the head-end refuses (an unknown
meter, not a number, negative, going back, or rising faster than the meter can measure) is
counted at the service's edge and its interval is not reported."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Set
from contextlib import aclosing
from datetime import datetime

from openmeg.core.bus import Bus, Subscription, cycle_beats, waiting
from openmeg.core.clock import Clock
from openmeg.core.edge import Edge, Gate, check_site
from openmeg.core.messages import (
    BusMessage,
    MeterReadings,
    PointUpdate,
    readings_topic,
)
from openmeg.distribution.head_end import DEVICE_REGISTERS, HeadEnd

RegisterReads = list[tuple[str, str, datetime, float]]
"""``(meter, channel, read_at, kWh)``: a register's value at a boundary."""

REGISTER_TOPICS = ("customer/+/+", "+/+/energy_kwh", "+/+/energy_in_kwh")
"""Where meter registers travel, under ``meg/<site>/``."""


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
    ) -> None:
        """``max_kw``: the largest power any meter measures; ``known``: every device of the
        site (their registers that are no meter's are passed over, not refused)."""
        self.site, self.bus, self.clock = site, bus, clock
        everyone = None if known is None else set(known) | set(meters) | set(device_meters)
        self.head_end = HeadEnd(site, set(meters), max_kw=max_kw, known=everyone)
        self.device_meters = HeadEnd(
            site, set(device_meters), registers=DEVICE_REGISTERS, max_kw=max_kw, known=everyone
        )
        self.gate = gate or Edge(site).gate("head_end")
        self.record_registers = record_registers
        self.published = 0
        self._subs: list[Subscription] = []

    async def start(self) -> None:
        self._subs = [
            await self.bus.subscribe(f"meg/{self.site}/{pattern}") for pattern in REGISTER_TOPICS
        ]

    async def stop(self) -> None:
        for sub in self._subs:
            await self.bus.unsubscribe(sub)
        self._subs = []

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
        for batch in closed:
            await self.bus.publish(readings_topic(self.site, batch.meter), batch)
        self.published += len(closed)
        if reads:
            await self.record_registers(reads)
        return closed

    async def pump(self) -> list[MeterReadings]:
        """Take the register values waiting, then close what the clock's time closes."""
        now = self.clock.now()
        for sub in self._subs:
            await self._take(waiting(sub), now)
        return await self.tick(now)

    async def run(self, stop: asyncio.Event) -> None:
        """At each beat of the control cycle, until ``stop`` is set: the register values that
        arrived (in their order), then the intervals the cycle's instant closes."""
        async with aclosing(cycle_beats(self.bus, self.site, stop)) as beats:
            async for ts in beats:
                for sub in self._subs:
                    await self._take(waiting(sub), ts)
                await self.tick(ts)
