"""The market's price schedule: the price now and the changes ahead, served over HTTP by the
price server and pushed on the bus at every new interval."""

from __future__ import annotations

import asyncio
import contextlib
from datetime import datetime, timedelta
from typing import Protocol

import pandas as pd

from openmeg.core.bus import Bus
from openmeg.core.clock import Clock
from openmeg.core.messages import MarketPrices, PriceChange, market_prices_topic


def schedule_ahead(
    prices: pd.DataFrame, now: datetime, *, hours: float, interval_min: int = 15
) -> list[PriceChange]:
    """The price of the interval holding ``now`` and each later interval, within ``hours``,
    whose prices differ from the one before (``prices``: ``interval_start, buy, sell``)."""
    table = prices.sort_values("interval_start").set_index("interval_start")
    step = pd.Timedelta(minutes=interval_min)
    t = pd.Timestamp(now)
    frame = table[(table.index + step > t) & (table.index < t + timedelta(hours=hours))]
    changed = frame[
        (frame[["buy", "sell"]].diff().abs().sum(axis=1) > 0) | (frame.index == frame.index.min())
    ]
    return [
        PriceChange(effective_from=ts.to_pydatetime(), buy=float(r.buy), sell=float(r.sell))
        for ts, r in changed.iterrows()
    ]


class MarketPriceFeed:
    """Pushes the schedule on the bus whenever a new interval begins."""

    def __init__(
        self,
        site: str,
        bus: Bus,
        prices: pd.DataFrame,
        *,
        ahead_h: float = 24.0,
        interval_min: int = 15,
    ) -> None:
        self.site, self.bus, self.prices = site, bus, prices
        self.ahead_h, self.interval_min = ahead_h, interval_min
        self._interval: pd.Timestamp | None = None

    async def update(self, now: datetime) -> bool:
        """Publish if ``now`` lies in another interval than the last publication; say if sent."""
        interval = pd.Timestamp(now).floor(f"{self.interval_min}min")
        if interval == self._interval:
            return False
        changes = schedule_ahead(
            self.prices, now, hours=self.ahead_h, interval_min=self.interval_min
        )
        if not changes:
            return False
        self._interval = interval
        await self.bus.publish(
            market_prices_topic(self.site),
            MarketPrices(site=self.site, ts=now, changes=changes),
        )
        return True


class Serving(Protocol):
    """A server that runs until it is told to stop (``uvicorn.Server``)."""

    async def serve(self) -> None: ...


async def serve_with_feed(
    server: Serving, feed: MarketPriceFeed, clock: Clock, *, every_s: float = 1.0
) -> None:
    """Run ``server``, and let ``feed`` push the schedule every ``every_s`` seconds [s] (on each
    new interval) for as long as the server runs."""

    async def push() -> None:
        while True:
            await feed.update(clock.now())
            await asyncio.sleep(every_s)

    pusher = asyncio.create_task(push())
    try:
        await server.serve()
    finally:
        pusher.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await pusher
