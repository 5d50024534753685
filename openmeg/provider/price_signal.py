"""Two-way AMI: the price each customer's tariff sets at an instant, sent to their premises
whenever it changes (a time-of-use period begins, a real-time price is published)."""

from __future__ import annotations

import asyncio
from contextlib import aclosing
from datetime import datetime

import pandas as pd

from openmeg.core.bus import Bus, cycle_beats
from openmeg.core.messages import PriceSignal, price_topic
from openmeg.core.site import Site
from openmeg.core.tariff import Tariff


def price_at(tariff: Tariff, ts: datetime, timezone: str) -> tuple[float, float, str]:
    """``(buy, sell, period)`` in currency per kWh at ``ts``."""
    if tariff.realtime:
        t = pd.Timestamp(ts).tz_convert("UTC").floor("h")
        for p in tariff.realtime:
            if pd.Timestamp(p.start).tz_convert("UTC") == t:
                return p.buy, p.sell, "real time"
        raise ValueError(f"no real-time price for {t.isoformat()}")
    if not tariff.energyratestructure:
        return 0.0, 0.0, "none"
    local = pd.Timestamp(ts).tz_convert(timezone)
    sched = tariff.energyweekendschedule if local.dayofweek >= 5 else tariff.energyweekdayschedule
    assert sched is not None
    period = sched[local.month - 1][local.hour]
    first = tariff.energyratestructure[period][0]
    return first.rate + first.adj, first.sell, f"period {period + 1}"


class PriceSignals:
    """Publishes each customer's price when it changes."""

    def __init__(self, site: Site, bus: Bus) -> None:
        self.site, self.bus = site, bus
        self._last: dict[str, tuple[float, float]] = {}

    async def update(self, ts: datetime) -> int:
        sent = 0
        for c in self.site.customers:
            if c.tariff is None:
                continue
            tariff = self.site.tariffs[c.tariff]
            buy, sell, period = price_at(tariff, ts, self.site.site.timezone)
            if self._last.get(c.id) == (buy, sell):
                continue
            self._last[c.id] = (buy, sell)
            await self.bus.publish(
                price_topic(self.site.site.id, c.id),
                PriceSignal(
                    site=self.site.site.id,
                    customer=c.id,
                    ts=ts,
                    buy_per_kwh=buy,
                    sell_per_kwh=sell,
                    tariff=c.tariff,
                    period=period,
                ),
            )
            sent += 1
        return sent

    async def run(self, stop: asyncio.Event) -> None:
        """At each beat of the control cycle (its instant), until ``stop`` is set."""
        async with aclosing(cycle_beats(self.bus, self.site.site.id, stop)) as beats:
            async for ts in beats:
                await self.update(ts)
