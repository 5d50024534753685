"""Benchmark: VEE on whole arrays, the pure function that ``openmeg vee run`` and the automatic
VEE call (``vee_matrix``: every rule, then the estimates, then what changed against the stored
versions).

``--meters`` meters x ``--days`` days of 15-minute import readings (default 10,000 x 30: 28.8
million readings) in the Europe/Berlin time zone, a window that holds the autumn clock change,
with four weeks of history before it; about 1 % of the intervals missing (single intervals, runs
of an hour and runs of four hours), 0.1 % negative and 0.05 % spikes; register reads once a day
for a tenth of the meters. Run in partitions of ``--partition`` meters (what a worker of a
partitioned job takes). Timed: ``vee_matrix`` and ``changes`` over every partition, data
generation excluded.

Prints one JSON object a line: ``vee_matrix_readings_per_s`` (target well above 300,000) and
the flagged and estimated counts as a check that the work was done. (``vee_readings_per_s``,
VEE from the store as ``openmeg vee run`` does it, is ``benchmarks/mdms_ingest.py``'s.)
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
import pandas as pd

from openmeg.operation.mdms.vee import VeeConfig
from openmeg.operation.mdms.vee_arrays import changes, vee_matrix
from openmeg.operation.mdms.vee_matrix import Registers

TZ = "Europe/Berlin"
START = pd.Timestamp("2026-10-10", tz=TZ)
CFG = VeeConfig(timezone=TZ, high_kwh=5.0, low_kwh=0.0)
HISTORY = 4 * 7 * 96


def partition(n_meters: int, n: int, seed: int) -> tuple[np.ndarray, np.ndarray, Registers]:
    """Readings of ``n_meters`` meters for ``n`` intervals, four weeks of history before."""
    rng = np.random.default_rng(seed)
    hours = (np.arange(HISTORY + n) % 96) / 4.0
    shape = 0.15 + 0.25 * np.exp(-(((hours - 19.0) / 2.5) ** 2)) + 0.1 * (hours > 7)
    scale = rng.uniform(0.5, 2.0, (n_meters, 1))
    both = scale * shape[None, :] * rng.gamma(8.0, 1 / 8.0, (n_meters, HISTORY + n))
    history, values = both[:, :HISTORY], both[:, HISTORY:]
    rows = np.arange(0, n_meters, 10)  # meters with a register read at each UTC midnight
    days = np.arange(0, n + 1, 96)
    true = np.zeros((len(rows), n + 1))
    np.cumsum(values[rows], axis=1, out=true[:, 1:])
    at = START.tz_convert("UTC").value + days * CFG.step.value
    regs = Registers.of(
        np.repeat(rows, len(days)), np.tile(at, len(rows)), (1000.0 + true[:, days]).ravel()
    )
    values[rng.random(values.shape) < 0.006] = np.nan
    for length, share in ((4, 0.0008), (16, 0.0002)):
        starts = np.flatnonzero(rng.random(values.size) < share / length)
        for s in starts.tolist():
            r, c = divmod(s, n)
            values[r, c : c + length] = np.nan
    values[rng.random(values.shape) < 0.001] = -0.05
    values[rng.random(values.shape) < 0.0005] = 4.0
    return values, history, regs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--meters", type=int, default=10_000)
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--partition", type=int, default=1_000)
    args = parser.parse_args()
    n = args.days * 96 + 4  # the clock change adds an hour to the window's local days
    none = np.zeros(0, np.int64)
    elapsed, flagged, estimated, readings, problems = 0.0, 0, 0, 0, 0
    for k, lo in enumerate(range(0, args.meters, args.partition)):
        size = min(args.partition, args.meters - lo)
        values, history, regs = partition(size, n, seed=k)
        t0 = time.perf_counter()
        result = vee_matrix(values, start=START, cfg=CFG, history=history, registers=regs)
        todo = changes(result, row=none, col=none, version=none, value=np.zeros(0), quality=none)
        elapsed += time.perf_counter() - t0
        readings += values.size
        flagged += len(result.flags.row)
        estimated += len(todo.row)
        problems += int((result.problem != "").sum())
    figures = [
        ("vee_matrix_readings_per_s", round(readings / elapsed), "readings/s", ">=300000"),
        ("vee_matrix_readings", readings, "readings", ""),
        ("vee_matrix_flags", flagged, "flags", ""),
        ("vee_matrix_estimated", estimated, "intervals", ""),
        ("vee_matrix_meters_not_estimated", problems, "meters", "0"),
    ]
    for metric, value, unit, target in figures:
        line = {"metric": metric, "value": value, "unit": unit}
        if target:
            line["target"] = target
        print(json.dumps(line))


if __name__ == "__main__":
    main()
