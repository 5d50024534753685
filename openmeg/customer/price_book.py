"""The price synchronising unit (Y.2071 Appendix III.1 step 3, III.2): keeps the market's price
change schedule in the store, as it is published, so that trading and revenue use the prices
that held at each instant.

A price is kept from the moment it takes effect: a later publication may revise a change still
ahead, never one that has begun.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

import httpx
import numpy as np
import numpy.typing as npt
import pandas as pd
import sqlalchemy as sa

from openmeg.core.bus import Bus
from openmeg.core.bus import Subscription as BusSubscription
from openmeg.core.edge import Edge, Gate, Refused, check_site
from openmeg.core.errors import OpenMegError
from openmeg.core.messages import BusMessage, MarketPrices, PriceChange, market_prices_topic
from openmeg.core.store import Store, as_utc, metadata
from openmeg.customer.revenue import interval_prices

market_prices = sa.Table(
    "market_prices",
    metadata,
    sa.Column("site", sa.String(64), nullable=False),
    sa.Column("effective_from", sa.DateTime(timezone=True), nullable=False),
    sa.Column("buy", sa.Float, nullable=False),
    sa.Column("sell", sa.Float, nullable=False),
    sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint("site", "effective_from"),
)


class PriceSourceError(OpenMegError):
    """The market's prices could not be had (server unreachable, answer malformed)."""


@dataclass(frozen=True, kw_only=True)
class Schedule:
    """Price changes as arrays: ``change_at_s`` (seconds since the epoch), ``buy``, ``sell``."""

    change_at_s: npt.NDArray[np.float64]
    buy: npt.NDArray[np.float64]
    sell: npt.NDArray[np.float64]


@dataclass(frozen=True, kw_only=True)
class Prices:
    """Per interval: purchase and sale prices (0 where unpriced), and whether priced."""

    buy: npt.NDArray[np.float64]
    sell: npt.NDArray[np.float64]
    priced: npt.NDArray[np.bool_]


MAX_ABS_PRICE_PER_KWH = 5.0
"""The default bound of a market price's magnitude [currency/kWh]."""


def check_change(change: PriceChange, max_abs_per_kwh: float) -> None:
    """``PriceSourceError`` unless both prices are numbers within ``max_abs_per_kwh``."""
    for name in ("buy", "sell"):
        value = getattr(change, name)
        if not isinstance(value, float | int) or not math.isfinite(value):
            raise PriceSourceError(f"the {name} price from {change.effective_from} is {value}")
        if abs(value) > max_abs_per_kwh:
            raise PriceSourceError(
                f"the {name} price from {change.effective_from} is {value}, beyond the site's "
                f"bound of {max_abs_per_kwh:g} per kWh (input_limits.max_abs_price_per_kwh)"
            )


class PriceBook:
    """The stored change schedule of one site's market prices, each within
    ``max_abs_per_kwh`` of zero [currency/kWh]."""

    def __init__(
        self, store: Store, site: str, *, max_abs_per_kwh: float = MAX_ABS_PRICE_PER_KWH
    ) -> None:
        self.store, self.site = store, site
        self.max_abs_per_kwh = max_abs_per_kwh
        market_prices.create(store.engine, checkfirst=True)

    def record(self, changes: Sequence[PriceChange], received_at: datetime) -> int:
        """Store a publication; all of it or, if any price is not a number within the bound,
        none of it (``PriceSourceError``). Returns how many changes were new or revised."""
        for c in changes:
            check_change(c, self.max_abs_per_kwh)
        now = as_utc(received_at)
        t = market_prices.c
        stored = 0
        with self.store.engine.begin() as conn:
            for c in changes:
                at = as_utc(c.effective_from)
                row = {"site": self.site, "effective_from": at, "buy": c.buy, "sell": c.sell}
                old = conn.execute(
                    sa.select(t.buy, t.sell).where(t.site == self.site, t.effective_from == at)
                ).first()
                if old is None:
                    conn.execute(market_prices.insert(), {**row, "received_at": now})
                    stored += 1
                elif at > now and (old.buy, old.sell) != (c.buy, c.sell):
                    conn.execute(
                        market_prices.update()
                        .where(t.site == self.site, t.effective_from == at)
                        .values(buy=c.buy, sell=c.sell, received_at=now)
                    )
                    stored += 1
        return stored

    def schedule(self, start: datetime, end: datetime) -> Schedule:
        """The changes that set the prices over ``[start, end)``: the one in force at ``start``
        and every later one before ``end``."""
        t = market_prices.c
        first = (
            sa.select(sa.func.max(t.effective_from))
            .where(t.site == self.site, t.effective_from <= as_utc(start))
            .scalar_subquery()
        )
        q = (
            sa.select(t.effective_from, t.buy, t.sell)
            .where(
                t.site == self.site,
                t.effective_from < as_utc(end),
                sa.or_(t.effective_from >= first, t.effective_from >= as_utc(start)),
            )
            .order_by(t.effective_from)
        )
        with self.store.engine.connect() as conn:
            rows = conn.execute(q).all()
        return Schedule(
            change_at_s=np.array([as_utc(r.effective_from).timestamp() for r in rows], dtype=float),
            buy=np.array([r.buy for r in rows], dtype=float),
            sell=np.array([r.sell for r in rows], dtype=float),
        )

    def interval_prices(self, starts: pd.DatetimeIndex, interval_s: float = 900.0) -> Prices:
        """The time-weighted prices of intervals starting at ``starts`` (UTC), and which of
        them are priced at all (an interval before the first known price is not)."""
        n = starts.size
        out = Prices(buy=np.zeros(n), sell=np.zeros(n), priced=np.zeros(n, dtype=bool))
        if n == 0:
            return out
        first, last = starts[0].to_pydatetime(), starts[-1].to_pydatetime()
        schedule = self.schedule(first, last + timedelta(seconds=interval_s))
        if schedule.change_at_s.size == 0:
            return out
        t = starts.asi8 / 1e9
        priced = t >= schedule.change_at_s[0]
        out.priced[:] = priced
        out.buy[priced] = interval_prices(schedule.change_at_s, schedule.buy, t[priced], interval_s)
        out.sell[priced] = interval_prices(
            schedule.change_at_s, schedule.sell, t[priced], interval_s
        )
        return out

    def price_at(self, ts: datetime) -> tuple[float, float] | None:
        """``(buy, sell)`` in force at ``ts``, or ``None`` if no price is known for it."""
        s = self.schedule(ts, ts + timedelta(microseconds=1))
        if s.buy.size == 0 or s.change_at_s[0] > as_utc(ts).timestamp():
            return None
        return float(s.buy[0]), float(s.sell[0])

    def last_change(self) -> datetime | None:
        """The latest instant a known price takes effect (how far ahead prices are known)."""
        q = sa.select(sa.func.max(market_prices.c.effective_from)).where(
            market_prices.c.site == self.site
        )
        with self.store.engine.connect() as conn:
            value = conn.execute(q).scalar_one()
        return None if value is None else as_utc(value)


class BusPriceSync:
    """Takes the market's publications from the bus into the price book; what is not a
    publication of this site's market within the book's bound is refused at ``gate``."""

    def __init__(self, book: PriceBook, bus: Bus, gate: Gate | None = None) -> None:
        self.book, self.bus = book, bus
        self.gate = gate or Edge(book.site).gate("price_book")
        self._sub: BusSubscription | None = None
        self._stored = 0

    async def start(self) -> None:
        self._sub = await self.bus.subscribe(market_prices_topic(self.book.site))

    async def pump(self, now: datetime) -> int:
        self._stored = 0
        while self._sub is not None and self._sub.pending():
            topic, msg = self._sub.get_nowait()

            async def take(msg: BusMessage) -> None:
                self._take(msg, now)

            await self.gate.handle(topic, msg, take)
        return self._stored

    def _take(self, msg: BusMessage, now: datetime) -> None:
        if not isinstance(msg, MarketPrices):
            raise Refused("not_prices", f"a {msg.type} message where market prices belong")
        check_site(msg, self.book.site)
        try:
            self._stored += self.book.record(msg.changes, now)
        except PriceSourceError as err:
            raise Refused("price_out_of_bounds", str(err)) from err

    async def stop(self) -> None:
        if self._sub is not None:
            await self.bus.unsubscribe(self._sub)
            self._sub = None


class HttpPriceSync:
    """Fetches the change schedule from a market price server over HTTP (an async client: the
    MEG's event loop never waits on the network)."""

    def __init__(self, book: PriceBook, url: str, *, hours: int = 24, timeout_s: float = 2.0):
        self.book, self.url = book, url.rstrip("/")
        self.hours, self.timeout_s = hours, timeout_s

    async def fetch(self) -> list[PriceChange]:
        try:
            async with httpx.AsyncClient(timeout=self.timeout_s) as client:
                response = await client.get(f"{self.url}/schedule", params={"hours": self.hours})
                response.raise_for_status()
                body = response.json()
            return [
                PriceChange(effective_from=r["interval_start"], buy=r["buy"], sell=r["sell"])
                for r in body
            ]
        except (httpx.HTTPError, ValueError, KeyError, TypeError) as err:
            raise PriceSourceError(
                f"price server {self.url} gave no prices: {err or type(err).__name__}"
            ) from err

    async def sync(self, now: datetime) -> int:
        """Fetch and store; ``PriceSourceError`` if the server cannot be had."""
        return self.book.record(await self.fetch(), now)
