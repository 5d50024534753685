"""The historian: archives the points that travel on the bus (Y.2071 R6), in batches.

Each point is stored when it changes, at most once per ``sample_every_s`` of its own time
stamps; ``flush`` writes what is buffered (and, on the way out, every point's latest value).
``run`` takes the updates as they come and writes a batch, in a worker thread, when it is full
or ``flush_every_s`` of the points' time passed; ``pump`` takes what is waiting (lockstep).
"""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta

from openmeg.core.bus import Bus, Subscription, bursts, waiting
from openmeg.core.messages import BusMessage, PointUpdate
from openmeg.core.points import Point
from openmeg.core.store import Store


class Historian:
    def __init__(
        self,
        site: str,
        bus: Bus,
        store: Store,
        *,
        sample_every_s: float = 60.0,
        batch: int = 5000,
        flush_every_s: float | None = None,
    ) -> None:
        """``flush_every_s``: how often ``run`` writes the buffer (default ``sample_every_s``)."""
        self.site, self.bus, self.store = site, bus, store
        self.sample_every = timedelta(seconds=sample_every_s)
        self.flush_every = timedelta(seconds=flush_every_s or sample_every_s)
        self.batch = batch
        self._flushed_at: datetime | None = None
        self.stored = 0
        self._sub: Subscription | None = None
        self._buffer: list[Point] = []
        self._last_stored: dict[str, datetime] = {}
        self._latest: dict[str, Point] = {}

    async def start(self) -> None:
        self._sub = await self.bus.subscribe(f"meg/{self.site}/+/+/+")

    def handle(self, msg: BusMessage) -> bool:
        """Take one message; whether it was a point update."""
        if not isinstance(msg, PointUpdate):
            return False
        point = msg.to_point()
        key = str(point.id)
        self._latest[key] = point
        last = self._last_stored.get(key)
        if last is None or point.ts - last >= self.sample_every:
            self._buffer.append(point)
            self._last_stored[key] = point.ts
        return True

    async def pump(self) -> int:
        """Take every point update waiting on the bus; store in batches. Returns how many came."""
        n = sum(self.handle(msg) for _, msg in waiting(self._sub))
        if len(self._buffer) >= self.batch:
            self.flush()
        return n

    async def run(self, stop: asyncio.Event) -> None:
        """Archive what arrives until ``stop`` is set: a batch written in a worker thread when
        full, or when ``flush_every_s`` passed since the last write (by the points' time)."""
        if self._sub is None:
            return
        async for burst in bursts(self._sub, stop):
            newest: datetime | None = None
            for _, msg in burst:
                if self.handle(msg):
                    assert isinstance(msg, PointUpdate)
                    newest = msg.ts if newest is None else max(newest, msg.ts)
            if newest is not None:
                self._flushed_at = self._flushed_at or newest
                if newest - self._flushed_at >= self.flush_every:
                    self._flushed_at = newest
                    await self.write_buffer()
            if len(self._buffer) >= self.batch:
                await self.write_buffer()
        await self.write_buffer()

    async def write_buffer(self) -> None:
        """Write the buffer in a worker thread (the loop goes on taking updates meanwhile)."""
        if self._buffer:
            batch, self._buffer = self._buffer, []
            self.stored += await self.store.in_thread(self.store.write_points, batch)

    def flush(self, *, latest: bool = False) -> None:
        """Write the buffer; with ``latest``, also each point's newest value not yet stored."""
        if latest:
            for key, point in self._latest.items():
                if self._last_stored.get(key) != point.ts:
                    self._buffer.append(point)
                    self._last_stored[key] = point.ts
        if self._buffer:
            self.stored += self.store.write_points(self._buffer)
            self._buffer = []

    async def stop(self) -> None:
        await self.pump()
        self.flush(latest=True)
        if self._sub is not None:
            await self.bus.unsubscribe(self._sub)
            self._sub = None
