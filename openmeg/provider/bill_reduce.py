"""The one pass over a month's [customers x intervals] readings that billing needs: sums and
peaks per run of intervals (see :mod:`openmeg.provider.tariff_month`), a block of customers at a
time so that the intermediate net stays in the processor's cache."""

from __future__ import annotations

import itertools
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np

ROWS_PER_BLOCK = 128


@dataclass(frozen=True, kw_only=True)
class RunSums:
    """Per customer and run [n_customers x n_runs]: ``drawn`` and ``given`` kWh (import and
    export; netted per interval unless the meters are separate), ``net`` = drawn - given before
    any per-interval netting (kWh) and ``peak`` the largest 15-minute net import (kWh)."""

    drawn: np.ndarray
    given: np.ndarray
    net: np.ndarray
    peak: np.ndarray


def reduce_runs(
    starts: np.ndarray,
    imp: np.ndarray,
    exp: np.ndarray,
    *,
    separate_meters: bool,
    parts: bool = True,
    threads: int = 1,
) -> RunSums:
    """Run sums of ``imp`` and ``exp`` (kWh [customers x intervals]).

    With ``separate_meters`` (buy all, sell all) import and export are two meters: drawn is the
    import, given the export and the peak the largest import. Otherwise each interval is netted:
    drawn is the positive part of import - export, given the negative part and the peak the
    largest net import; without ``parts`` (net metering needs only ``net``) drawn and given are
    not computed (left as ``net`` and zeros). NaN propagates into the sums, for the caller to find.
    ``threads`` > 1 shares the customers among threads (numpy releases the GIL in its loops).
    """
    n_c = imp.shape[0]
    n_r = starts.shape[0]
    out = tuple(np.empty((n_c, n_r)) for _ in range(4))
    bounds = np.linspace(0, n_c, max(1, min(threads, n_c)) + 1).astype(int)
    spans = list(itertools.pairwise(int(b) for b in bounds))
    if len(spans) == 1:
        _reduce_rows(starts, imp, exp, out, 0, n_c, separate_meters, parts)
    else:
        with ThreadPoolExecutor(max_workers=len(spans)) as pool:
            jobs = [
                pool.submit(_reduce_rows, starts, imp, exp, out, a, b, separate_meters, parts)
                for a, b in spans
            ]
            for job in jobs:
                job.result()
    drawn, given, net, peak = out
    if not separate_meters and parts:
        np.subtract(drawn, net, out=given)
    elif not separate_meters:
        drawn, given = net, np.zeros_like(net)
    return RunSums(drawn=drawn, given=given, net=net, peak=peak)


def _reduce_rows(
    starts: np.ndarray,
    imp: np.ndarray,
    exp: np.ndarray,
    out: tuple[np.ndarray, ...],
    first: int,
    last: int,
    separate_meters: bool,
    parts: bool,
) -> None:
    drawn, given, net, peak = out
    block = np.empty((min(ROWS_PER_BLOCK, max(last - first, 1)), imp.shape[1]))
    for lo in range(first, last, ROWS_PER_BLOCK):
        hi = min(lo + ROWS_PER_BLOCK, last)
        if separate_meters:
            drawn[lo:hi] = np.add.reduceat(imp[lo:hi], starts, axis=1)
            given[lo:hi] = np.add.reduceat(exp[lo:hi], starts, axis=1)
            peak[lo:hi] = np.maximum.reduceat(imp[lo:hi], starts, axis=1)
            net[lo:hi] = drawn[lo:hi] - given[lo:hi]
            continue
        rows = block[: hi - lo]
        np.subtract(imp[lo:hi], exp[lo:hi], out=rows)
        net[lo:hi] = np.add.reduceat(rows, starts, axis=1)
        peak[lo:hi] = np.maximum.reduceat(rows, starts, axis=1)
        if parts:
            np.maximum(rows, 0.0, out=rows)
            drawn[lo:hi] = np.add.reduceat(rows, starts, axis=1)
