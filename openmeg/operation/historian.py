"""The historian: archives the points that travel on the bus (Y.2071 R6), in batches.

Each point is stored when it changes, at most once per ``sample_every_s`` of its own time
stamps; ``flush`` writes what is buffered (and, on the way out, every point's latest value).
"""

from __future__ import annotations

from datetime import datetime, timedelta

from openmeg.core.bus import Bus, Subscription
from openmeg.core.messages import PointUpdate
from openmeg.core.points import Point
from openmeg.core.store import Store


class Historian:
    def __init__(
        self, site: str, bus: Bus, store: Store, *, sample_every_s: float = 60.0, batch: int = 5000
    ) -> None:
        self.site, self.bus, self.store = site, bus, store
        self.sample_every = timedelta(seconds=sample_every_s)
        self.batch = batch
        self.stored = 0
        self._sub: Subscription | None = None
        self._buffer: list[Point] = []
        self._last_stored: dict[str, datetime] = {}
        self._latest: dict[str, Point] = {}

    async def start(self) -> None:
        self._sub = await self.bus.subscribe(f"meg/{self.site}/+/+/+")

    async def pump(self) -> int:
        """Take every point update waiting on the bus; store in batches. Returns how many came."""
        if self._sub is None:
            return 0
        n = 0
        while self._sub.pending():
            _, msg = await self._sub.get()
            if not isinstance(msg, PointUpdate):
                continue
            n += 1
            point = msg.to_point()
            key = str(point.id)
            self._latest[key] = point
            last = self._last_stored.get(key)
            if last is None or point.ts - last >= self.sample_every:
                self._buffer.append(point)
                self._last_stored[key] = point.ts
        if len(self._buffer) >= self.batch:
            self.flush()
        return n

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
