"""The process image: every point as the DER data feeder delivered it on the bus (value, time,
quality), and the one instant's view of it that a control cycle reads.

A controller asks for a value with ``image[key]`` (``device/name``); a point that is missing,
stale or invalid raises ``StalePoint``, as OpenEMS's ``getOrError`` does, so that the controller
holds its device at a safe setpoint instead of acting on what it does not know.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from functools import partial

from openmeg.core.bus import Bus, Subscription
from openmeg.core.edge import Edge, Gate, Refused, check_point_topic, check_site
from openmeg.core.errors import OpenMegError
from openmeg.core.messages import BusMessage, PointUpdate
from openmeg.core.points import Quality


class StalePoint(OpenMegError):
    """A point a controller needs is missing, stale or invalid."""

    def __init__(self, key: str, reason: str) -> None:
        self.key, self.reason = key, reason
        super().__init__(f"{key} is {reason}")


@dataclass(frozen=True, kw_only=True, slots=True)
class Sample:
    """A point's latest value as delivered."""

    value: float
    ts: datetime
    quality: Quality


class ProcessImage(Mapping[str, float]):
    """The points of one instant: ``image[key]`` is a good value or raises ``StalePoint``."""

    def __init__(self, samples: Mapping[str, Sample], now: datetime) -> None:
        self._samples = samples
        self.now = now

    def __getitem__(self, key: str) -> float:
        sample = self._samples.get(key)
        if sample is None:
            raise StalePoint(key, "missing: no value was delivered")
        if sample.quality is not Quality.GOOD or not math.isfinite(sample.value):
            raise StalePoint(key, f"{sample.quality.value} since {sample.ts.isoformat()}")
        return sample.value

    def sample(self, key: str) -> Sample | None:
        return self._samples.get(key)

    def __iter__(self) -> Iterator[str]:
        return iter(self._samples)

    def __len__(self) -> int:
        return len(self._samples)


class ImageKeeper:
    """Keeps the latest sample of every point: those the platform's own DER data feeder
    delivers, handed over as it delivers them (``take``), so that one cycle's image holds one
    poll's values whatever the bus's latency; and those other sources publish on
    ``meg/<site>/<domain>/<device>/<name>`` for devices the feeder does not poll (``local``),
    if they are devices of the site (``known``): anything else is refused at ``gate``."""

    def __init__(
        self,
        site: str,
        bus: Bus,
        *,
        local: Callable[[str], bool] = lambda device: False,
        known: Callable[[str], bool] = lambda device: True,
        gate: Gate | None = None,
    ) -> None:
        self.site, self.bus = site, bus
        self.local, self.known = local, known
        self.gate = gate or Edge(site).gate("process_image")
        self.samples: dict[str, Sample] = {}
        self._sub: Subscription | None = None

    def take(self, msg: PointUpdate) -> None:
        """A point as the feeder delivers it."""
        value = math.nan if msg.value is None else msg.value
        self.samples[f"{msg.device}/{msg.name}"] = Sample(
            value=value, ts=msg.ts, quality=msg.quality
        )

    def _take_from_bus(self, topic: str, msg: BusMessage) -> None:
        if not isinstance(msg, PointUpdate) or self.local(msg.device):
            return
        check_site(msg, self.site)
        check_point_topic(topic, msg)
        if not self.known(msg.device):
            raise Refused("unknown_device", f"{msg.device!r} is no device of this site")
        self.take(msg)

    async def start(self) -> None:
        self._sub = await self.bus.subscribe(f"meg/{self.site}/+/+/+")

    def pump(self) -> int:
        """Take in what arrived since the last call; how many updates."""
        n = 0
        sub = self._sub
        while sub is not None and sub.pending():
            topic, msg = sub.get_nowait()
            if isinstance(msg, PointUpdate) and not self.local(msg.device):
                n += self.gate.take_now(topic, msg, partial(self._take_from_bus, topic))
        return n

    def image(self, now: datetime) -> ProcessImage:
        """A consistent view of this instant (later deliveries do not change it)."""
        return ProcessImage(dict(self.samples), now)

    async def stop(self) -> None:
        if self._sub is not None:
            await self.bus.unsubscribe(self._sub)
            self._sub = None
