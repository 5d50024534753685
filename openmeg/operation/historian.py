"""The historian: archives the points that travel on the bus (Y.2071 R6), in batches.

Each point is stored when it changes, at most once per ``sample_every_s`` of its own time
stamps; ``flush`` writes what is buffered (and, on the way out, every point's latest value).
``run`` takes the updates as they come and writes a batch, in a worker thread, when it is full
or ``flush_every_s`` of the points' time passed; ``pump`` takes what is waiting (lockstep).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import datetime, timedelta

from openmeg.core.bus import Bus, Subscription, bursts, waiting
from openmeg.core.edge import Edge, Gate, Refused, check_point_topic, check_site
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
        known: Callable[[str], bool] = lambda device: True,
        gate: Gate | None = None,
    ) -> None:
        """``flush_every_s``: how often ``run`` writes the buffer (default ``sample_every_s``);
        ``known``: whether a device is the site's (points of others are refused at ``gate``)."""
        self.site, self.bus, self.store = site, bus, store
        self.known = known
        self.gate = gate or Edge(site).gate("historian")
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

    def handle(self, msg: BusMessage, topic: str | None = None) -> bool:
        """Take one message (that came on ``topic``); whether it was a point update.
        ``Refused`` says why not."""
        if not isinstance(msg, PointUpdate):
            return False
        check_site(msg, self.site)
        if topic is not None:
            check_point_topic(topic, msg)
        if not self.known(msg.device):
            raise Refused("unknown_device", f"{msg.device!r} is no device of this site")
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
        n = sum(self._take(topic, msg) for topic, msg in waiting(self._sub))
        await self.gate.edge.flush()
        if len(self._buffer) >= self.batch:
            self.flush()
        return n

    def _take(self, topic: str, msg: BusMessage) -> bool:
        """``handle`` at the edge: a refusal is counted, never raised."""
        return isinstance(msg, PointUpdate) and self.gate.take_now(
            topic, msg, lambda m: self.handle(m, topic)
        )

    async def run(self, stop: asyncio.Event) -> None:
        """Archive what arrives until ``stop`` is set: a batch written in a worker thread when
        full, or when ``flush_every_s`` passed since the last write (by the points' time)."""
        if self._sub is None:
            return
        async for burst in bursts(self._sub, stop):
            newest: datetime | None = None
            for topic, msg in burst:
                if self._take(topic, msg):
                    assert isinstance(msg, PointUpdate)
                    newest = msg.ts if newest is None else max(newest, msg.ts)
            await self.gate.edge.flush()
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
