"""Each owner's peak demand of the month in an aggregate building, announced as it rises: from
the head-end's interval readings on the bus."""

from __future__ import annotations

import asyncio
from collections import defaultdict

import pandas as pd

from openmeg.core.bus import Bus, Subscription, messages, waiting
from openmeg.core.messages import (
    MeterReadings,
    PeakDemand,
    peak_topic,
    readings_topic,
    split_readings,
)
from openmeg.core.site import Site


class PeakWatch:
    def __init__(self, site: Site, bus: Bus) -> None:
        self.site, self.bus = site, bus
        self.tz = site.site.timezone
        meter_of = {m.customer: m.id for m in site.meters}
        self._owner_of = {
            meter_of[c.id]: (c.id, c.building)
            for c in site.customers
            if c.building is not None and c.id in meter_of
        }
        self._hours: dict[tuple[str, pd.Timestamp], list[float]] = defaultdict(list)
        self.peaks: dict[tuple[str, str], tuple[float, pd.Timestamp]] = {}
        self._sub: Subscription | None = None

    async def start(self) -> None:
        self._sub = await self.bus.subscribe(readings_topic(self.site.site.id, "+"))

    async def stop(self) -> None:
        if self._sub is not None:
            await self.bus.unsubscribe(self._sub)
            self._sub = None

    async def pump(self) -> int:
        """Take the readings waiting on the bus; how many peaks were announced."""
        n = 0
        for _, msg in waiting(self._sub):
            for batch in split_readings(msg):
                n += len(await self.observe(batch))
        return n

    async def run(self, stop: asyncio.Event) -> None:
        """Take the readings as they come, until ``stop`` is set."""
        if self._sub is None:
            return
        async for _, msg in messages(self._sub, stop):
            for batch in split_readings(msg):
                await self.observe(batch)

    async def observe(self, batch: MeterReadings) -> list[PeakDemand]:
        """Take interval readings; announce each owner's monthly peak when a full hour beats it."""
        if batch.channel != "import" or batch.meter not in self._owner_of:
            return []
        owner, building = self._owner_of[batch.meter]
        out = []
        for r in batch.readings:
            hour = pd.Timestamp(r.interval_start).tz_convert(self.tz).floor("h")
            energies = self._hours[(batch.meter, hour)]
            energies.append(r.value_kwh)
            if len(energies) < 4:
                continue
            del self._hours[(batch.meter, hour)]
            kw = sum(energies)  # four quarter hours: the hour's average demand in kW
            month = f"{hour:%Y-%m}"
            best = self.peaks.get((owner, month))
            if best is not None and kw <= best[0]:
                continue
            self.peaks[(owner, month)] = (kw, hour)
            msg = PeakDemand(
                site=self.site.site.id,
                owner=owner,
                building=str(building),
                month=month,
                peak_kw=kw,
                hour_start=hour.to_pydatetime(),
            )
            await self.bus.publish(peak_topic(self.site.site.id, owner), msg)
            out.append(msg)
        return out
