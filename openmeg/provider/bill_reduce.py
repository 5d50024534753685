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
    threads: int = 1,
) -> RunSums:
    """Run sums of ``imp`` and ``exp`` (kWh [customers x intervals], runs beginning at ``starts``).

    With ``separate_meters`` (buy all, sell all) import and export are two meters: drawn is the
    import, given the export and the peak the largest import. Otherwise each interval is netted:
    drawn is the positive part of import - export, given the negative part and the peak the
    largest net import. NaN in a run makes its ``net`` NaN, for the caller to find. ``threads`` > 1
    runs numba's parallel kernel: call it from one thread of the process at a time.
    """
    n_c, n_r = imp.shape[0], starts.shape[0]
    first = starts.astype(np.int64)
    ends = np.append(first[1:], imp.shape[1])
    drawn, net, peak = (np.empty((n_c, n_r)) for _ in range(3))
    many = min(threads, numba.config.NUMBA_DEFAULT_NUM_THREADS, n_c)  # type: ignore[attr-defined]
    if many > 1:
        numba.set_num_threads(many)
    _KERNELS[separate_meters, many > 1](imp, exp, first, ends, drawn, net, peak)
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


# the serial kernels may run in many threads at once (an API server); the parallel ones use
# numba's thread pool, which a process must enter from one thread at a time
_serial = numba.njit(cache=True)
_parallel = numba.njit(cache=True, parallel=True)
_KERNELS: dict[tuple[bool, bool], Callable[..., Any]] = {
    (separate, many): cast(Callable[..., Any], (_parallel if many else _serial)(fn))
    for separate, fn in ((False, _netted), (True, _separate))
    for many in (False, True)
}
