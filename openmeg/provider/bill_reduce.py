"""The one pass over a month's [customers x intervals] readings that billing needs: sums and
peaks per run of intervals (see :mod:`openmeg.provider.tariff_month`). Compiled with numba: each
reading is read once, nothing as large as the readings is written, customers are shared among
``threads``."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, cast

import numba
import numpy as np


@dataclass(frozen=True, kw_only=True)
class RunSums:
    """Per customer and run [n_customers x n_runs]: ``drawn`` and ``given`` kWh (import and
    export; netted per interval unless the meters are separate), ``net`` = drawn - given (kWh)
    and ``peak`` the largest 15-minute (net) import of the run (kWh)."""

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
    """Run sums of ``imp`` and ``exp`` (kWh [customers x intervals], runs beginning at ``starts``).

    With ``separate_meters`` (buy all, sell all) import and export are two meters: drawn is the
    import, given the export and the peak the largest import. Otherwise each interval is netted:
    drawn is the positive part of import - export, given the negative part and the peak the
    largest net import. NaN in a run makes its ``net`` NaN, for the caller to find. (``parts``
    is accepted for the callers that need only ``net``; the pass costs the same.)
    """
    n_c, n_r = imp.shape[0], starts.shape[0]
    first = starts.astype(np.int64)
    ends = np.append(first[1:], imp.shape[1])
    drawn, net, peak = (np.empty((n_c, n_r)) for _ in range(3))
    kernel = _separate_kernel if separate_meters else _netted_kernel
    previous = numba.get_num_threads()
    numba.set_num_threads(max(1, min(threads, numba.get_num_threads(), n_c)))
    try:
        kernel(imp, exp, first, ends, drawn, net, peak)
    finally:
        numba.set_num_threads(previous)
    given = drawn - net
    return RunSums(drawn=drawn, given=given, net=net, peak=peak)


def _netted(
    imp: np.ndarray,
    exp: np.ndarray,
    starts: np.ndarray,
    ends: np.ndarray,
    drawn: np.ndarray,
    net: np.ndarray,
    peak: np.ndarray,
) -> None:  # pragma: no cover - compiled
    for c in numba.prange(imp.shape[0]):
        for r in range(starts.shape[0]):
            total = 0.0
            pos = 0.0
            top = -np.inf
            for i in range(starts[r], ends[r]):
                d = imp[c, i] - exp[c, i]
                total += d
                pos += d if d > 0.0 else 0.0
                top = d if d > top else top
            drawn[c, r] = pos
            net[c, r] = total
            peak[c, r] = top


def _separate(
    imp: np.ndarray,
    exp: np.ndarray,
    starts: np.ndarray,
    ends: np.ndarray,
    drawn: np.ndarray,
    net: np.ndarray,
    peak: np.ndarray,
) -> None:  # pragma: no cover - compiled
    for c in numba.prange(imp.shape[0]):
        for r in range(starts.shape[0]):
            bought = 0.0
            sold = 0.0
            top = -np.inf
            for i in range(starts[r], ends[r]):
                a = imp[c, i]
                bought += a
                sold += exp[c, i]
                top = a if a > top else top
            drawn[c, r] = bought
            net[c, r] = bought - sold
            peak[c, r] = top


_compile = numba.njit(cache=True, parallel=True, fastmath=False)
_netted_kernel = cast(Callable[..., Any], _compile(_netted))
_separate_kernel = cast(Callable[..., Any], _compile(_separate))
