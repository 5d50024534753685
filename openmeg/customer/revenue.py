"""Energy revenue calculating (Y.2071 Appendix III.2): what each power device earns, interval by
interval: energy out x the sale price minus energy in x the purchase price. Pure, vectorised.

Prices come as a change schedule (each price holds from its instant until the next). A price
that changes inside an interval counts for the share of the interval it covers (energy taken
as spread evenly within the interval).
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]


def interval_prices(
    change_at_s: FloatArray, price: FloatArray, interval_start_s: FloatArray, interval_s: float
) -> FloatArray:
    """The time-weighted price of each interval under a change schedule (times in seconds)."""
    change_at = np.asarray(change_at_s, dtype=float)
    prices = np.asarray(price, dtype=float)
    starts = np.asarray(interval_start_s, dtype=float)
    if change_at.size == 0 or np.any(np.diff(change_at) <= 0):
        raise ValueError("a price schedule needs at least one price and increasing change times")
    if starts.size and starts[0] < change_at[0]:
        raise ValueError("the first interval starts before the first scheduled price")
    # integral of the step price from the first change time: F(t) = sum over segments
    seg_len = np.diff(np.append(change_at, np.inf))
    cum = np.concatenate(([0.0], np.cumsum(prices[:-1] * seg_len[:-1])))

    def integral(t: FloatArray) -> FloatArray:
        j = np.searchsorted(change_at, t, side="right") - 1
        value: FloatArray = cum[j] + prices[j] * (t - change_at[j])
        return value

    return (integral(starts + interval_s) - integral(starts)) / interval_s


def revenue(
    out_kwh: FloatArray, in_kwh: FloatArray, sell_price: FloatArray, buy_price: FloatArray
) -> FloatArray:
    """Revenue per device and interval (devices x intervals): out x sell - in x buy."""
    result: FloatArray = np.asarray(out_kwh) * sell_price - np.asarray(in_kwh) * buy_price
    return result


def revenue_totals(
    out_kwh: FloatArray, in_kwh: FloatArray, sell_price: FloatArray, buy_price: FloatArray
) -> FloatArray:
    """Revenue per device over all the intervals (one matrix-vector product each way)."""
    result: FloatArray = np.asarray(out_kwh) @ sell_price - np.asarray(in_kwh) @ buy_price
    return result


def revenue_by_period(per_interval: FloatArray, period_starts: npt.NDArray[np.int64]) -> FloatArray:
    """Sums of per-interval revenue (devices x intervals) over periods starting at the given
    interval indices (e.g. days, months)."""
    result: FloatArray = np.add.reduceat(per_interval, period_starts, axis=-1)
    return result
