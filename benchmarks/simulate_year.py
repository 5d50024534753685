"""Benchmark: the demo MEG for one year at 1-minute steps with a power flow every hour.

Prints one JSON object per figure. Device-steps count every simulated device (generators,
storage, loads, heat loads, chargers) times the number of steps.
"""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime

from openmeg.core.site import load_site
from openmeg.sim.scenario import make_engine, simulate
from openmeg.sim.summary import summarize


def main() -> None:
    site = load_site("demo")
    make_engine(site, start=datetime(2026, 1, 1, tzinfo=UTC), days=1, step_s=60).run()  # compile
    t0 = time.perf_counter()
    engine = simulate(site, start=datetime(2026, 1, 1, tzinfo=UTC), days=365, step_s=60)
    summary = summarize(engine)
    elapsed = time.perf_counter() - t0
    devices = sum(1 for d in site.devices if d.kind != "sensor")
    device_steps = devices * engine.plant.n_steps
    print(
        json.dumps(
            {"metric": "simulate_year_s", "value": round(elapsed, 2), "unit": "s", "target": "<40"}
        )
    )
    print(
        json.dumps(
            {
                "metric": "device_steps_per_s",
                "value": round(device_steps / elapsed),
                "unit": "device-steps/s",
                "target": ">=500000",
            }
        )
    )
    print(
        json.dumps(
            {
                "metric": "simulate_year_balance_error_kwh",
                "value": summary["balance_error_kwh"],
                "unit": "kWh",
                "target": "<1e-9",
            }
        )
    )


if __name__ == "__main__":
    main()
