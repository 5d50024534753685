"""Benchmark: 1,000,000 customer-months billed on a Dask ``distributed.LocalCluster``, with 1 and
with 2 worker processes, by the same pure function as in process (``bill_arrays``), a partition
of customers per task, each partition's 12 months in order with the carry.

The readings of a partition are generated once in the workers and kept there (``persist``):
``BLOCKS`` distinct blocks of ``PARTITION`` customers (half with PV) of a 31-day month, which every
partition that uses the block bills as each month of 2018 (the month's first days), so that a
million customer-months fit in memory. The time is from submitting the billing tasks to having
every partition's total back. The same partitions billed in this process, one after the other,
give the figure without Dask beside it. Each process loads the compiled kernel of the pass over
the readings (numba) once before the clock starts.

Prints one JSON object a line: ``billing_dask_1m_s`` for 1 and 2 workers, and
``billing_1m_in_process_s``. ``--customers N`` for quick runs (default 83,334 customers x 12).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "benchmarks")]
os.environ["PYTHONPATH"] = os.pathsep.join(
    [str(ROOT), str(ROOT / "benchmarks"), os.environ.get("PYTHONPATH", "")]
)
from billing import LOCAL, TARIFF, TZ, UTC  # noqa: E402  (the in-process benchmark's tariff)

from openmeg.provider.bill_carry import Carry  # noqa: E402
from openmeg.provider.bill_matrix import bill_arrays  # noqa: E402
from tests.provider.sam_oracle import synthetic_customers  # noqa: E402

PARTITION = 2_000
BLOCKS = 4


def make_block(seed: int, customers: int) -> tuple[np.ndarray, np.ndarray]:
    """31 days of import and export kWh [customers x 2976] (January's weather)."""
    cols = LOCAL.month == 1
    load, pv = synthetic_customers(LOCAL[cols], customers, seed=seed)
    return np.maximum(load - pv, 0.0), np.maximum(pv - load, 0.0)


def bill_partition(block: tuple[np.ndarray, np.ndarray], customers: int) -> int:
    """Bill ``customers`` rows of ``block`` for the 12 months; the cents of all their bills."""
    imp, exp = block[0][:customers], block[1][:customers]
    carry: Carry | None = None
    cents = 0
    for month in range(1, 13):
        cols = LOCAL.month == month
        n = int(cols.sum())
        arrays, carry = bill_arrays(
            TARIFF, UTC[cols], imp[:, :n], exp[:, :n], timezone=TZ, carry_in=carry
        )
        cents += int(arrays.total_cents.sum())
    return cents


def warm_up() -> None:
    """Load the compiled pass over the readings (numba, from its disk cache) in this process."""
    bill_arrays(TARIFF, UTC[:96], np.zeros((1, 96)), np.zeros((1, 96)), timezone=TZ)


def sizes(customers: int) -> list[int]:
    full, rest = divmod(customers, PARTITION)
    return [PARTITION] * full + ([rest] if rest else [])


def on_cluster(workers: int, customers: int) -> tuple[float, int]:
    from distributed import Client, LocalCluster, wait

    with (
        LocalCluster(
            n_workers=workers,
            threads_per_worker=1,
            processes=True,
            dashboard_address=None,
            memory_limit="6GB",
            silence_logs=logging.CRITICAL,  # workers' heartbeats at shutdown are not news
        ) as cluster,
        Client(cluster) as client,
    ):
        blocks = client.map(make_block, range(BLOCKS), [PARTITION] * BLOCKS, pure=False)
        wait(blocks)
        if workers > 1:  # every worker holds every block: a partition runs where it is sent
            client.replicate(blocks)
        client.run(warm_up)  # every worker loads the compiled kernel before the clock starts
        parts = sizes(customers)
        start = time.perf_counter()
        jobs = [
            client.submit(bill_partition, blocks[i % BLOCKS], n, pure=False)
            for i, n in enumerate(parts)
        ]
        cents = sum(client.gather(jobs))
        return time.perf_counter() - start, cents


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--customers", type=int, default=83_334)
    args = parser.parse_args()
    customer_months = 12 * args.customers
    blocks = [make_block(seed, PARTITION) for seed in range(BLOCKS)]
    warm_up()
    start = time.perf_counter()
    local_cents = sum(
        bill_partition(blocks[i % BLOCKS], n) for i, n in enumerate(sizes(args.customers))
    )
    local_s = time.perf_counter() - start
    del blocks
    results = []
    for workers in (1, 2):
        seconds, cents = on_cluster(workers, args.customers)
        assert cents == local_cents, f"{workers} workers: {cents} cents, in process {local_cents}"
        print(f"# {workers} worker(s): {customer_months} in {seconds:.2f} s", file=sys.stderr)
        results.append((workers, seconds))
    scale = 1_000_000 / customer_months
    for workers, seconds in results:
        print(
            json.dumps(
                {
                    "metric": "billing_dask_1m_s",
                    "value": round(seconds * scale, 2),
                    "unit": "s",
                    "workers": workers,
                    "customer_months": customer_months,
                    "partition_customers": PARTITION,
                }
            )
        )
    print(
        json.dumps(
            {
                "metric": "billing_1m_in_process_s",
                "value": round(local_s * scale, 2),
                "unit": "s",
                "customer_months": customer_months,
                "total_cents": local_cents,
            }
        )
    )


if __name__ == "__main__":
    main()
