"""The local P2P market, interval by interval (Y.2071 clause 6, the peer-to-peer model).

After each 15-minute interval every prosumer's metered position becomes an order: energy taken
from the grid a bid, energy fed in an offer. A prosumer's limit prices are the reference prices
they set for trading, if any, else the market's prices of the interval (a bid at the purchase
price, an offer at the sale price: nobody pays more, or accepts less, than the utility would
give). Orders a prosumer entered for the interval take the place of their derived ones. The
double auction of ``clearing.clear`` finds one uniform price; what does not trade locally is
traded with the utility at its prices; the clearing per prosumer is stored, once per interval.
That is trading, on the readings as they came: the money is settled per local day on the
validated series once VEE has validated it (``settlement``, ``settlement_run``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

import numpy as np
import pandas as pd
import sqlalchemy as sa

from openmeg.core.errors import OpenMegError
from openmeg.core.site import Site
from openmeg.core.store import Store, as_utc, metadata
from openmeg.market.clearing import BID, OFFER, Clearing, clear, settle

p2p_orders = sa.Table(
    "p2p_orders",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("site", sa.String(64), nullable=False),
    sa.Column("interval_start", sa.DateTime(timezone=True), nullable=False),
    sa.Column("customer", sa.String(64), nullable=False),
    sa.Column("side", sa.Integer, nullable=False),
    sa.Column("price", sa.Float, nullable=False),
    sa.Column("quantity_kwh", sa.Float, nullable=False),
    sa.Column("entered_at", sa.DateTime(timezone=True), nullable=False),
)

p2p_settlements = sa.Table(
    "p2p_settlements",
    metadata,
    sa.Column("site", sa.String(64), nullable=False),
    sa.Column("interval_start", sa.DateTime(timezone=True), nullable=False),
    sa.Column("customer", sa.String(64), nullable=False),
    sa.Column("clearing_price", sa.Float, nullable=True),
    sa.Column("local_kwh", sa.Float, nullable=False),
    sa.Column("utility_kwh", sa.Float, nullable=False),
    sa.Column("money", sa.Float, nullable=False),
    sa.PrimaryKeyConstraint("site", "interval_start", "customer"),
)


class MarketError(OpenMegError):
    """An order or a clearing was refused; nothing was stored."""


class PositionError(MarketError):
    """A position or a price that is not a finite number: the interval is not cleared."""


@dataclass(frozen=True, kw_only=True)
class Order:
    customer: str
    side: int  # BID (+1) to buy, OFFER (-1) to sell
    price: float
    quantity_kwh: float

    def __post_init__(self) -> None:
        if self.side not in (BID, OFFER):
            raise MarketError("an order is a bid (+1) or an offer (-1)")
        for name in ("price", "quantity_kwh"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int | float) or not np.isfinite(v):
                raise MarketError(f"the order's {name} must be a finite number, got {v!r}")
        if self.quantity_kwh <= 0:
            raise MarketError(f"the order's quantity must be positive, got {self.quantity_kwh}")


def derived_orders(
    positions_kwh: Mapping[str, float],
    *,
    buy: float,
    sell: float,
    limits: Mapping[str, tuple[float, float]] | None = None,
) -> list[Order]:
    """Orders from metered positions (kWh, import positive): a bid at the purchase limit, an
    offer at the sale limit; ``limits`` (customer -> (purchase, sale)) override the market's
    prices ``buy`` and ``sell``."""
    out = []
    for customer, q in positions_kwh.items():
        if q == 0 or q != q:
            continue
        purchase, sale = (limits or {}).get(customer, (buy, sell))
        if q > 0:
            out.append(Order(customer=customer, side=BID, price=purchase, quantity_kwh=q))
        else:
            out.append(Order(customer=customer, side=OFFER, price=sale, quantity_kwh=-q))
    return out


@dataclass(frozen=True, kw_only=True)
class IntervalResult:
    interval_start: datetime
    clearing: Clearing
    rows: pd.DataFrame  # customer, local_kwh, utility_kwh, money


class LocalMarket:
    """Orders entered ahead, clearing and settlement of each interval, in the store."""

    def __init__(self, store: Store, site: str, customers: set[str]) -> None:
        self.store, self.site, self.customers = store, site, customers
        for table in (p2p_orders, p2p_settlements):
            table.create(store.engine, checkfirst=True)

    def enter(self, interval_start: datetime, order: Order, *, now: datetime) -> None:
        """An order for an interval that has not begun (it replaces the derived one)."""
        if order.customer not in self.customers:
            raise MarketError(f"unknown customer {order.customer!r}")
        start = as_utc(interval_start)
        if start.timestamp() % 900:
            raise MarketError(f"{start.isoformat()} does not start a 15-minute interval")
        if start <= as_utc(now):
            raise MarketError(f"the interval {start.isoformat()} has begun: orders are closed")
        with self.store.engine.begin() as conn:
            conn.execute(
                p2p_orders.insert(),
                {
                    "site": self.site,
                    "interval_start": start,
                    "customer": order.customer,
                    "side": order.side,
                    "price": order.price,
                    "quantity_kwh": order.quantity_kwh,
                    "entered_at": as_utc(now),
                },
            )

    def entered(self, interval_start: datetime) -> list[Order]:
        t = p2p_orders.c
        q = (
            sa.select(p2p_orders)
            .where(t.site == self.site, t.interval_start == as_utc(interval_start))
            .order_by(t.id)
        )
        with self.store.engine.connect() as conn:
            return [
                Order(customer=r.customer, side=r.side, price=r.price, quantity_kwh=r.quantity_kwh)
                for r in conn.execute(q)
            ]

    def clear_interval(
        self,
        interval_start: datetime,
        positions_kwh: Mapping[str, float],
        *,
        buy: float,
        sell: float,
        limits: Mapping[str, tuple[float, float]] | None = None,
    ) -> IntervalResult:
        """Clear and settle one interval; an interval is settled once (``MarketError`` after).
        Positions and prices that are not finite numbers are refused (``MarketError``)."""
        start = as_utc(interval_start)
        bad = {c: q for c, q in positions_kwh.items() if not math.isfinite(q)}
        if bad or not (math.isfinite(buy) and math.isfinite(sell)):
            raise PositionError(
                f"the interval {start.isoformat()} cannot be cleared on positions {bad} and "
                f"prices {buy}/{sell}: every one must be a finite number"
            )
        if self.settlement(start).size:
            raise MarketError(f"the interval {start.isoformat()} is settled already")
        entered = self.entered(start)
        by_hand = {o.customer for o in entered}
        derived = derived_orders(
            {c: q for c, q in positions_kwh.items() if c not in by_hand},
            buy=buy,
            sell=sell,
            limits=limits,
        )
        orders = derived + entered
        side = np.array([o.side for o in orders], dtype=np.int64)
        price = np.array([o.price for o in orders], dtype=float)
        qty = np.array([o.quantity_kwh for o in orders], dtype=float)
        names = sorted({o.customer for o in orders})
        index = {c: i for i, c in enumerate(names)}
        who = np.array([index[o.customer] for o in orders], dtype=np.int64)
        result = clear(side, price, qty)
        s = settle(who, side, qty, result, utility_buy=buy, utility_sell=sell)
        rows = pd.DataFrame(
            {
                "customer": [names[i] for i in s.participant],
                "local_kwh": s.local_kwh,
                "utility_kwh": s.utility_kwh,
                "money": s.money,
            }
        )
        if len(rows):
            with self.store.engine.begin() as conn:
                conn.execute(
                    p2p_settlements.insert(),
                    [
                        {
                            "site": self.site,
                            "interval_start": start,
                            "customer": r.customer,
                            "clearing_price": result.price,
                            "local_kwh": float(r.local_kwh),
                            "utility_kwh": float(r.utility_kwh),
                            "money": float(r.money),
                        }
                        for r in rows.itertuples()
                    ],
                )
        return IntervalResult(interval_start=start, clearing=result, rows=rows)

    def settlement(self, start: datetime, end: datetime | None = None) -> pd.DataFrame:
        """Stored settlements of the intervals from ``start`` (to ``end``, or that one)."""
        t = p2p_settlements.c
        q = sa.select(p2p_settlements).where(t.site == self.site)
        if end is None:
            q = q.where(t.interval_start == as_utc(start))
        else:
            q = q.where(t.interval_start >= as_utc(start), t.interval_start < as_utc(end))
        with self.store.engine.connect() as conn:
            rows = conn.execute(q.order_by(t.interval_start, t.customer)).all()
        frame = pd.DataFrame(
            [dict(r._mapping) for r in rows],
            columns=[c.name for c in p2p_settlements.columns],
        )
        frame["interval_start"] = pd.to_datetime(frame["interval_start"], utc=True)
        return frame


def site_market(store: Store, site: Site) -> LocalMarket:
    """The site's local market, open to every customer with a main meter."""
    return LocalMarket(store, site.site.id, {m.customer for m in site.meters if m.parent is None})


def settlement_totals(rows: pd.DataFrame) -> pd.DataFrame:
    """Settled ``rows`` summed per customer: local_kwh, utility_kwh and money."""
    return rows.groupby("customer")[["local_kwh", "utility_kwh", "money"]].sum()
