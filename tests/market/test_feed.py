"""The price server's schedule pushed on the bus for as long as the server runs."""

import asyncio

import pandas as pd

from openmeg.core.bus import InProcessBus
from openmeg.core.clock import SimClock
from openmeg.core.messages import MarketPrices, market_prices_topic
from openmeg.market.feed import MarketPriceFeed, serve_with_feed
from openmeg.market.prices import synthetic_prices

START = pd.Timestamp("2026-06-01", tz="UTC")


class _Server:
    def __init__(self) -> None:
        self.served = False

    async def serve(self) -> None:
        await asyncio.sleep(0.05)
        self.served = True


async def test_the_schedule_is_pushed_while_the_server_runs() -> None:
    bus = InProcessBus()
    pushed = await bus.subscribe(market_prices_topic("demo"))
    feed = MarketPriceFeed("demo", bus, synthetic_prices(START, 2, seed=0))
    server = _Server()
    await serve_with_feed(server, feed, SimClock(START.to_pydatetime()), every_s=0.01)
    assert server.served
    _, msg = await pushed.get()
    assert isinstance(msg, MarketPrices) and msg.site == "demo" and msg.changes
    assert not pushed.pending()  # one interval of simulated time: pushed once
    await bus.close()
