"""VEE on whole arrays: validate, estimate and decide what changed, for many meters at once.

Pure functions over numpy arrays (no store): :func:`vee_matrix` is what ``openmeg vee run``, the
automatic VEE service and the benchmark run; :func:`changes` says which intervals need a new
version against the newest stored ones, so that only estimated or edited intervals (and their
later changes) are ever stored.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from openmeg.operation.mdms.estimate_matrix import estimate_matrix
from openmeg.operation.mdms.vee import VeeConfig
from openmeg.operation.mdms.vee_matrix import RULE_CODE, MatrixFlags, Registers, validate_matrix

ESTIMATE_ON = frozenset({"gap", "negative", "high", "low", "spike"})
"""Rules whose intervals are replaced by an estimate; the others are flagged for review."""
_ESTIMATE_CODES = np.array(sorted(RULE_CODE[r] for r in ESTIMATE_ON))
GOOD, ESTIMATED, EDITED = 1, 2, 3
SAME_KWH = 1e-12


@dataclass(frozen=True, kw_only=True)
class VeeResult:
    """The validated window: kWh float64 [n_meters, n_intervals] (NaN where nothing), quality
    codes (0 none, 1 good, 2 estimated), method codes (into ``estimate_matrix.METHODS``), the
    flags, and per meter why it could not be estimated (``""`` if it could; such a meter's
    row holds no estimates)."""

    values: np.ndarray
    quality: np.ndarray
    method: np.ndarray
    flags: MatrixFlags
    problem: np.ndarray


def vee_matrix(
    values: np.ndarray,
    *,
    start: pd.Timestamp,
    cfg: VeeConfig,
    history: np.ndarray,
    active: bool | np.ndarray = True,
    registers: Registers | None = None,
) -> VeeResult:
    """Validate every meter's window and estimate what must be.

    Parameters
    ----------
    values : float64 [n_meters, n_intervals], raw kWh per interval from ``start``, NaN where
        there is no reading.
    start : aware instant of the first interval, on an interval boundary.
    cfg : the rules' limits (kWh per interval) and the site's time zone.
    history : float64 [n_meters, n_hist], raw kWh of the intervals just before ``start`` (four
        weeks for the like-day profiles).
    active : whether each meter is active (zero runs are suspect), one or per meter.
    registers : register reads (cumulative kWh) of the meters.
    """
    flags = validate_matrix(values, start=start, cfg=cfg, active=active, registers=registers)
    replace = np.zeros(values.shape, bool)
    hit = np.isin(flags.rule, _ESTIMATE_CODES)
    replace[flags.row[hit], flags.col[hit]] = True
    good = np.where(replace, np.nan, values)
    est = estimate_matrix(good, replace, start=start, cfg=cfg, history=history, registers=registers)
    estimated = est.method > 0
    out = np.where(estimated, est.values, good)
    quality = np.where(estimated, ESTIMATED, np.where(np.isnan(good), 0, GOOD)).astype(np.int8)
    return VeeResult(
        values=out, quality=quality, method=est.method, flags=flags, problem=est.problem
    )


@dataclass(frozen=True, kw_only=True)
class Changes:
    """Intervals needing a new version: row, column, version number, kWh, quality code,
    method code."""

    row: np.ndarray
    col: np.ndarray
    version: np.ndarray
    value: np.ndarray
    quality: np.ndarray
    method: np.ndarray


def changes(
    result: VeeResult,
    *,
    row: np.ndarray,
    col: np.ndarray,
    version: np.ndarray,
    value: np.ndarray,
    quality: np.ndarray,
) -> Changes:
    """What to store after ``result`` given the newest stored version of each interval that
    has one (parallel arrays ``row, col, version, value, quality``): a first version for each
    interval estimated now; a next version where a stored one differs from the new result (a
    late reading makes an estimate ``good`` again, a new estimate replaces an old one); nothing
    over an edited interval, nothing where the value and quality are as stored, nothing for a
    meter with a problem."""
    n_i = result.values.shape[1]
    quality_now, values_now = result.quality.ravel(), result.values.ravel()
    stored = row * n_i + col
    order = np.argsort(stored, kind="stable")
    stored = stored[order]
    cells = np.union1d(np.flatnonzero(quality_now == ESTIMATED), stored)
    at = np.minimum(np.searchsorted(stored, cells), max(len(stored) - 1, 0))
    has = stored[at] == cells if len(stored) else np.zeros(len(cells), bool)
    cur_version = np.where(has, version[order][at] if len(stored) else 0, 0)
    cur_value = np.where(has, value[order][at] if len(stored) else np.nan, np.nan)
    cur_quality = np.where(has, quality[order][at] if len(stored) else 0, 0)
    new_q, new_v = quality_now[cells], values_now[cells]
    same = (cur_quality == new_q) & (np.abs(cur_value - new_v) < SAME_KWH)
    write = np.where(has, (cur_quality != EDITED) & ~same, new_q == ESTIMATED)
    write &= (new_q > 0) & (result.problem == "")[cells // n_i]
    cells = cells[write]
    return Changes(
        row=cells // n_i,
        col=cells % n_i,
        version=cur_version[write] + 1,
        value=new_v[write],
        quality=new_q[write],
        method=result.method.ravel()[cells],
    )
