"""Benchmark: one local-market clearing of 1,000,000 orders (bids and offers)."""

from __future__ import annotations

import json
import time

import numpy as np

from openmeg.market.clearing import BID, OFFER, clear


def main() -> None:
    rng = np.random.default_rng(1)
    n = 1_000_000
    side = rng.choice(np.array([BID, OFFER]), n)
    price = rng.uniform(-0.05, 0.45, n).round(4)
    qty = rng.uniform(0.01, 5.0, n).round(3)
    clear(side[:1000], price[:1000], qty[:1000])
    times = []
    for _ in range(3):
        t0 = time.perf_counter()
        result = clear(side, price, qty)
        times.append(time.perf_counter() - t0)
    assert result.volume_kwh > 0
    print(
        json.dumps(
            {
                "metric": "market_clear_ms",
                "value": round(min(times) * 1000, 1),
                "unit": "ms",
                "target": "<1000",
            }
        )
    )


if __name__ == "__main__":
    main()
