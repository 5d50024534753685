"""The head-end as a service of the platform: it takes the meters' register values from the bus,
closes 15-minute intervals as the clock passes their boundaries, and publishes the readings it
closes on the bus for the MDMS, for the customers' meters and for the power devices' own meters
alike: at each boundary one columnar ``ReadingsBatch`` of all the meters (``batch_readings_topic``),
the shape a head-end of thousands of meters sends. The register values at each boundary go to
the MDMS's register store through ``record_registers``."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Set
from contextlib import aclosing
from datetime import datetime

from openmeg.core.bus import Bus, Subscription, cycle_beats, waiting
from openmeg.core.clock import Clock
from openmeg.core.messages import (
    BusMessage,
    MeterReadings,
    PointUpdate,
    ReadingsBatch,
    batch_readings_topic,
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
    ) -> None:
        self.site, self.bus, self.clock = site, bus, clock
        self.head_end = HeadEnd(site, set(meters))
        self.device_meters = HeadEnd(site, set(device_meters), registers=DEVICE_REGISTERS)
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

    def handle(self, msg: BusMessage) -> None:
        """Take one register value (anything else on those topics is passed over)."""
        if isinstance(msg, PointUpdate):
            self.head_end.observe(msg)
            self.device_meters.observe(msg)

    async def tick(self, now: datetime) -> list[MeterReadings]:
        """At ``now``: the intervals closed, published for the MDMS; the registers recorded."""
        closed = self.head_end.tick(now) + self.device_meters.tick(now)
        reads: RegisterReads = []
        for head in (self.head_end, self.device_meters):
            reads += head.register_reads
            head.register_reads.clear()
        if closed:  # one columnar message for all the meters at this boundary
            batch = ReadingsBatch.of(self.site, closed)
            await self.bus.publish(batch_readings_topic(self.site), batch)
        self.published += len(closed)
        if reads:
            await self.record_registers(reads)
        return closed

    async def pump(self) -> list[MeterReadings]:
        """Take the register values waiting, then close what the clock's time closes."""
        for sub in self._subs:
            for _, msg in waiting(sub):
                self.handle(msg)
        return await self.tick(self.clock.now())

    async def run(self, stop: asyncio.Event) -> None:
        """At each beat of the control cycle, until ``stop`` is set: the register values that
        arrived (in their order), then the intervals the cycle's instant closes."""
        async with aclosing(cycle_beats(self.bus, self.site, stop)) as beats:
            async for ts in beats:
                for sub in self._subs:
                    for _, msg in waiting(sub):
                        self.handle(msg)
                await self.tick(ts)
