"""Estimation on the [meters x intervals] matrix (the E of VEE on whole arrays).

The methods of :func:`openmeg.operation.mdms.estimate.estimate` (the per-series reference), for
every meter at once: runs of up to ``max_interpolate`` missing intervals with a reading on each
side inside the window are interpolated linearly; longer runs take the mean of the same local
weekday and clock time in up to four previous weeks (only readings that are there count), scaled
so that the run holds what the registers around it say it must.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from openmeg.operation.mdms.vee import VeeConfig
from openmeg.operation.mdms.vee_matrix import Registers

METHODS = ("measured", "interpolation", "like_day", "like_day_scaled")
INTERPOLATION, LIKE_DAY, LIKE_DAY_SCALED = 1, 2, 3
HISTORY_WEEKS = 4


@dataclass(frozen=True, kw_only=True)
class Estimates:
    """``values`` kWh where estimated (NaN elsewhere), ``method`` codes into ``METHODS`` (0
    where not estimated), and per row the reason it could not be estimated (``""`` if it could;
    such a row has no estimates at all)."""

    values: np.ndarray
    method: np.ndarray
    problem: np.ndarray


def _runs(mask: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Runs of consecutive True cells per row: row, first column, end column (exclusive)."""
    n_m, n_i = mask.shape
    padded = np.zeros((n_m, n_i + 2), np.int8)
    padded[:, 1:-1] = mask
    d = np.diff(padded, axis=1)
    r, c0 = np.nonzero(d == 1)
    _, c1 = np.nonzero(d == -1)
    return r, c0, c1


def _cells(c0: np.ndarray, c1: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Every cell of the runs in order: run index, column, position in the run."""
    size = c1 - c0
    run = np.repeat(np.arange(len(size)), size)
    pos = np.arange(int(size.sum())) - np.repeat(np.cumsum(size) - size, size)
    return run, c0[run] + pos, pos


def like_day_slots(start: pd.Timestamp, n_hist: int, n: int, cfg: VeeConfig) -> np.ndarray:
    """For each window column, the columns of ``[history | window]`` at the same local clock
    time on the same weekday 1 to 4 weeks before (two on a fall-back hour), -1 padded:
    int64 [n, slots]."""
    first = start.tz_convert("UTC") - n_hist * cfg.step
    local = pd.date_range(first, periods=n_hist + n, freq=cfg.step).tz_convert(cfg.timezone)
    keys = pd.DataFrame(
        {
            "day": local.tz_localize(None).normalize().as_unit("ns").asi8,
            "hour": local.hour,
            "minute": local.minute,
            "col": np.arange(n_hist + n),
        }
    )
    week = pd.Timedelta(weeks=1).value
    window = keys.iloc[n_hist:].reset_index(drop=True)
    asks = pd.concat(
        [window.assign(day=window.day - w * week, w=w, j=window.index) for w in range(1, 5)]
    )
    pairs = asks.drop(columns="col").merge(keys, on=["day", "hour", "minute"])
    pairs = pairs.sort_values(["j", "w", "col"], kind="stable")
    rank = pairs.groupby("j").cumcount().to_numpy()
    slots = np.full((n, int(rank.max()) + 1 if len(rank) else 1), -1, np.int64)
    slots[pairs.j.to_numpy(), rank] = pairs.col.to_numpy()
    return slots


def estimate_matrix(
    good: np.ndarray,
    replace: np.ndarray,
    *,
    start: pd.Timestamp,
    cfg: VeeConfig,
    history: np.ndarray,
    registers: Registers | None = None,
    max_interpolate: int = 4,
) -> Estimates:
    """Estimates for the ``replace`` cells of ``good``.

    Parameters
    ----------
    good : float64 [n_meters, n_intervals], kWh, NaN where missing or replaced.
    replace : bool [n_meters, n_intervals], the cells to estimate.
    start : aware instant of the first column.
    cfg : interval length and the site's time zone (local weekdays and clock times).
    history : float64 [n_meters, n_hist], kWh of the intervals just before ``start``.
    registers : register reads of the rows (cumulative kWh), to scale like-day estimates.
    max_interpolate : the longest run (intervals) interpolated.
    """
    n_m, n_i = good.shape
    values = np.full((n_m, n_i), np.nan)
    method = np.zeros((n_m, n_i), np.int8)
    problem = np.full(n_m, "", dtype=object)
    r, c0, c1 = _runs(replace)
    size = c1 - c0
    inner = (c0 > 0) & (c1 < n_i)
    before = good[r, np.maximum(c0 - 1, 0)]
    after = good[r, np.minimum(c1, n_i - 1)]
    interp = (size <= max_interpolate) & inner & ~np.isnan(before) & ~np.isnan(after)
    run, col, pos = _cells(c0[interp], c1[interp])
    v0, v1 = before[interp][run], after[interp][run]
    rows = r[interp][run]
    values[rows, col] = v0 + (v1 - v0) * (pos + 1) / (size[interp][run] + 1)
    method[rows, col] = INTERPOLATION
    r, c0, c1 = r[~interp], c0[~interp], c1[~interp]
    if not len(r):
        return Estimates(values=values, method=method, problem=problem)
    run, col, _ = _cells(c0, c1)
    rows = r[run]
    slots = like_day_slots(start, history.shape[1], n_i, cfg)[col]
    both = np.concatenate([history, good], axis=1)
    sample = np.where(slots >= 0, both[rows[:, None], np.maximum(slots, 0)], np.nan)
    count = (~np.isnan(sample)).sum(axis=1)
    total = np.nansum(sample, axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        profile = total / count
    lacking = np.flatnonzero(count == 0)
    if len(lacking):
        first_row, at = np.unique(rows[lacking], return_index=True)
        when = pd.to_datetime(start.value + col[lacking][at] * cfg.step.value, utc=True)
        for row, t in zip(first_row.tolist(), when, strict=True):
            problem[row] = f"no like-day history for {t}: cannot estimate this gap"
    scaled = np.zeros(len(r), bool)
    if registers is not None and len(registers.row) >= 2:
        factor = _register_factor(good, replace, profile, run, r, c0, c1, registers, start, cfg)
        scaled = ~np.isnan(factor)
        profile = np.where(scaled[run], profile * np.where(scaled, factor, 1.0)[run], profile)
    values[rows, col] = profile
    method[rows, col] = np.where(scaled[run], LIKE_DAY_SCALED, LIKE_DAY)
    bad = problem != ""
    values[bad] = np.nan
    method[bad] = 0
    return Estimates(values=values, method=method, problem=problem)


def _register_factor(
    good: np.ndarray,
    replace: np.ndarray,
    profile: np.ndarray,
    run: np.ndarray,
    r: np.ndarray,
    c0: np.ndarray,
    c1: np.ndarray,
    regs: Registers,
    start: pd.Timestamp,
    cfg: VeeConfig,
) -> np.ndarray:
    """Per like-day run: the factor that makes it hold the registers' advance between the
    reads around it less the known intervals between them; NaN where it is not scaled."""
    n_i = good.shape[1]
    step, t0 = cfg.step.value, start.value
    shift = 40
    base = min(int(regs.at_ns.min()), t0) // 10**9 - 1
    key = (regs.row << shift) | (regs.at_ns // 10**9 - base)
    g0 = (t0 + c0 * step) // 10**9 - base
    g1 = (t0 + c1 * step) // 10**9 - base
    b = np.searchsorted(key, (r << shift) | g0, side="right") - 1
    a = np.searchsorted(key, (r << shift) | g1, side="left")
    ok = (b >= 0) & (a < len(key))
    b, a = np.clip(b, 0, len(key) - 1), np.clip(a, 0, len(key) - 1)
    ok &= (regs.row[b] == r) & (regs.row[a] == r)
    k0 = np.clip(-(-(regs.at_ns[b] - t0) // step), 0, n_i)
    k1 = np.maximum(np.clip((regs.at_ns[a] - t0) // step, 0, n_i), k0)
    rows_with, at = np.unique(r, return_inverse=True)
    part = good[rows_with]
    cum = np.zeros((len(rows_with), n_i + 1))
    np.cumsum(np.where(replace[rows_with] | np.isnan(part), 0.0, part), axis=1, out=cum[:, 1:])
    known = cum[at, k1] - cum[at, k0]
    target = (regs.kwh[a] - regs.kwh[b]) - known
    total = np.bincount(run, weights=np.nan_to_num(profile), minlength=len(r))
    ok &= (total > 0) & (target >= 0)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(ok, target / total, np.nan)
