"""Local peer-to-peer market: one interval's bids and offers cleared by a double auction at a
uniform price. Pure and vectorised (numpy).

Rule: bids are ranked by price, highest first, offers by price, lowest first; among equal
prices the earlier order comes first (price-time priority). The traded volume is the largest
quantity at which the marginal bid's price is at least the marginal offer's. Every trade clears
at one price, the midpoint of the marginal bid and the marginal offer (a k = 1/2 double
auction); the marginal orders may be filled in part. With no bid at or above an offer, nothing
trades. What an order does not trade locally it trades with the utility at the utility's prices.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
BID, OFFER = 1, -1


@dataclass(frozen=True, kw_only=True)
class Clearing:
    price: float | None  # per kWh; None when nothing traded
    volume_kwh: float
    filled_kwh: FloatArray  # per order, in the order given


def clear(side: IntArray, price: FloatArray, quantity_kwh: FloatArray) -> Clearing:
    """Clear one interval; ``side`` is +1 for a bid (to buy), -1 for an offer (to sell)."""
    side = np.asarray(side)
    price = np.asarray(price, dtype=float)
    qty = np.asarray(quantity_kwh, dtype=float)
    if not (side.shape == price.shape == qty.shape):
        raise ValueError("side, price and quantity must have one entry per order")
    if np.any(qty < 0) or not np.all(np.isfinite(price)) or not np.all(np.isfinite(qty)):
        raise ValueError("quantities must be finite and non-negative, prices finite")
    if np.any((side != BID) & (side != OFFER)):
        raise ValueError("side is +1 (bid) or -1 (offer)")
    filled = np.zeros(qty.size)
    bids = np.flatnonzero(side == BID)
    offers = np.flatnonzero(side == OFFER)
    if bids.size == 0 or offers.size == 0:
        return Clearing(price=None, volume_kwh=0.0, filled_kwh=filled)
    b = bids[np.lexsort((bids, -price[bids]))]  # price desc, then earlier first
    o = offers[np.lexsort((offers, price[offers]))]  # price asc, then earlier first
    cum_b = np.cumsum(qty[b])
    cum_o = np.cumsum(qty[o])
    cap = min(cum_b[-1], cum_o[-1])
    points = np.union1d(cum_b, cum_o)
    points = points[(points > 0) & (points <= cap)]
    if points.size == 0:
        return Clearing(price=None, volume_kwh=0.0, filled_kwh=filled)
    # the order covering the unit just below each candidate volume
    ib = np.searchsorted(cum_b, points, side="left")
    io = np.searchsorted(cum_o, points, side="left")
    ok = price[b[ib]] >= price[o[io]]
    if not ok.any():
        return Clearing(price=None, volume_kwh=0.0, filled_kwh=filled)
    k = int(np.flatnonzero(ok)[-1])
    volume = float(points[k])
    # between two breakpoints the same pair of orders is marginal: the last crossing one ends it
    nb, no = int(ib[k]), int(io[k])
    uniform = (price[b[nb]] + price[o[no]]) / 2.0
    filled[b] = np.clip(volume - (cum_b - qty[b]), 0.0, qty[b])
    filled[o] = np.clip(volume - (cum_o - qty[o]), 0.0, qty[o])
    return Clearing(price=float(uniform), volume_kwh=volume, filled_kwh=filled)


@dataclass(frozen=True, kw_only=True)
class Settlement:
    participant: IntArray
    local_kwh: FloatArray  # bought (+) or sold (-) on the local market
    utility_kwh: FloatArray  # bought (+) from or sold (-) to the utility
    money: FloatArray  # paid (+) or received (-)


def settle(
    participant: IntArray,
    side: IntArray,
    quantity_kwh: FloatArray,
    result: Clearing,
    *,
    utility_buy: float,
    utility_sell: float,
) -> Settlement:
    """Per participant: local trades at the clearing price, the rest with the utility (bought
    at ``utility_buy``, sold at ``utility_sell``)."""
    side = np.asarray(side)
    qty = np.asarray(quantity_kwh, dtype=float)
    ids, inverse = np.unique(np.asarray(participant), return_inverse=True)
    local = side * result.filled_kwh
    rest = side * (qty - result.filled_kwh)
    price = result.price or 0.0
    money_local = local * price
    money_utility = np.where(rest > 0, rest * utility_buy, rest * utility_sell)
    n = ids.size
    return Settlement(
        participant=ids,
        local_kwh=np.bincount(inverse, weights=local, minlength=n).astype(float),
        utility_kwh=np.bincount(inverse, weights=rest, minlength=n).astype(float),
        money=np.bincount(inverse, weights=money_local + money_utility, minlength=n).astype(float),
    )
