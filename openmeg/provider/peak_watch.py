"""Each owner's peak demand of the month in an aggregate building, announced as it rises: from
the head-end's interval readings on the bus."""

from __future__ import annotations

import asyncio
from collections import defaultdict

import pandas as pd

from openmeg.core.bus import Bus, Subscription, messages, waiting
from openmeg.core.edge import Edge, Gate, Refused, check_site
from openmeg.core.messages import (
    BusMessage,
    MeterReadings,
    PeakDemand,
    ReadingsBatch,
    peak_topic,
    readings_topic,
    split_readings,
)
from openmeg.core.site import Site


class PeakWatch:
    """Readings of another site, or of an interval above what a meter can measure, are
    refused at ``gate``."""

    def __init__(self, site: Site, bus: Bus, gate: Gate | None = None) -> None:
        self.site, self.bus = site, bus
        self.gate = gate or Edge(site.site.id).gate("peak_watch")
        self._top_kwh = site.meter_max_kw() * 0.25
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
        self._announced = 0

    async def start(self) -> None:
        self._sub = await self.bus.subscribe(readings_topic(self.site.site.id, "+"))

    async def stop(self) -> None:
        if self._sub is not None:
            await self.bus.unsubscribe(self._sub)
            self._sub = None

    async def pump(self) -> int:
        """Take the readings waiting on the bus; how many peaks were announced."""
        before = self._announced
        for topic, msg in waiting(self._sub):
            await self.gate.handle(topic, msg, self._take)
        return self._announced - before

    async def run(self, stop: asyncio.Event) -> None:
        """Take the readings as they come, until ``stop`` is set."""
        if self._sub is None:
            return
        async for topic, msg in messages(self._sub, stop):
            await self.gate.handle(topic, msg, self._take)

    async def _take(self, msg: BusMessage) -> None:
        if not isinstance(msg, MeterReadings | ReadingsBatch):
            raise Refused("not_readings", f"a {msg.type} message where readings belong")
        check_site(msg, self.site.site.id)
        for batch in split_readings(msg):
            if any(r.value_kwh > self._top_kwh for r in batch.readings):
                raise Refused(
                    "reading_too_large",
                    f"an interval of {batch.meter} above the {self._top_kwh:g} kWh a meter "
                    "can measure",
                )
        for batch in split_readings(msg):
            self._announced += len(await self.observe(batch))

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
