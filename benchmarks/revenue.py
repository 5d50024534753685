"""Benchmark: one year of 1-minute energy for 1,000 devices: revenue per device, a sale price
that changes every 5 minutes on its own schedule, an hourly purchase price."""

from __future__ import annotations

import json
import time

import numpy as np

from openmeg.customer.revenue import interval_prices, revenue_totals

MINUTES = 525_600
DEVICES = 1_000
CHUNK = 100


def main() -> None:
    rng = np.random.default_rng(2)
    starts = np.arange(MINUTES, dtype=float) * 60.0
    sell_changes = np.arange(0, MINUTES * 60, 300, dtype=float) + 17.0  # off the minute grid
    sell_changes[0] = 0.0
    sell = rng.uniform(-0.02, 0.30, sell_changes.size)
    buy_changes = np.arange(0, MINUTES * 60, 3600, dtype=float)
    buy = rng.uniform(0.05, 0.40, buy_changes.size)
    # energy is made chunk by chunk (not timed); the revenue of all devices is timed
    chunks = [
        (rng.random((CHUNK, MINUTES)) * 0.05, rng.random((CHUNK, MINUTES)) * 0.02)
        for _ in range(DEVICES // CHUNK)
    ]
    t0 = time.perf_counter()
    sell_min = interval_prices(sell_changes, sell, starts, 60.0)
    buy_min = interval_prices(buy_changes, buy, starts, 60.0)
    totals = np.concatenate([revenue_totals(out, into, sell_min, buy_min) for out, into in chunks])
    elapsed = time.perf_counter() - t0
    assert totals.shape == (DEVICES,)
    print(
        json.dumps(
            {
                "metric": "revenue_1000dev_year_s",
                "value": round(elapsed, 3),
                "unit": "s",
                "target": "<5",
            }
        )
    )


if __name__ == "__main__":
    main()
