"""Validation rules on the [meters x intervals] matrix (the V of VEE on whole arrays).

``values`` is float64 ``[n_meters, n_intervals]``: kWh per 15-minute interval from ``start``
(aware, on an interval boundary), NaN where there is no reading. The rules and their details are
those of :func:`openmeg.operation.mdms.vee.validate` (the per-series reference), applied to every
meter at once: gap, negative, zero run on an active meter, spike per local day (92, 96 or 100
intervals on daylight-saving days), high, low, register mismatch.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from openmeg.operation.mdms.vee import RULES, VeeConfig

RULE_CODE = {rule: code for code, rule in enumerate(RULES)}
_NAME_RANK = np.argsort(np.argsort(np.array(RULES)))
"""Rank of each rule code by rule name: flags sort by (interval, rule name), as the reference."""


@dataclass(frozen=True, kw_only=True)
class Registers:
    """Register reads of the matrix's meters: row, instant (ns since the epoch, UTC) and
    cumulative kWh, sorted by (row, instant)."""

    row: np.ndarray
    at_ns: np.ndarray
    kwh: np.ndarray

    @staticmethod
    def empty() -> Registers:
        return Registers(row=np.zeros(0, np.int64), at_ns=np.zeros(0, np.int64), kwh=np.zeros(0))

    @staticmethod
    def of(rows: np.ndarray, at_ns: np.ndarray, kwh: np.ndarray) -> Registers:
        order = np.lexsort((at_ns, rows))
        return Registers(
            row=np.asarray(rows, np.int64)[order],
            at_ns=np.asarray(at_ns, np.int64)[order],
            kwh=np.asarray(kwh, float)[order],
        )


@dataclass(frozen=True, kw_only=True)
class MatrixFlags:
    """Flags as parallel arrays: matrix row, interval column, rule code (into ``RULES``) and
    detail, sorted by (row, column, rule name)."""

    row: np.ndarray
    col: np.ndarray
    rule: np.ndarray
    detail: np.ndarray

    def frame(self, start: pd.Timestamp, cfg: VeeConfig) -> pd.DataFrame:
        """The flags as the reference gives them: ``interval_start, rule, detail`` (all rows)."""
        return pd.DataFrame(
            {
                "interval_start": pd.to_datetime(start.value + self.col * cfg.step.value, utc=True),
                "rule": np.array(RULES, dtype=object)[self.rule],
                "detail": self.detail,
            }
        )

    def runs(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """The flags as runs of consecutive intervals of one row with the same rule and
        detail: row, first column, number of intervals, rule code, detail."""
        if not len(self.row):
            return self.row, self.col, self.col, self.rule, self.detail
        _, text = np.unique(self.detail.astype(str), return_inverse=True)
        order = np.lexsort((self.col, text, self.rule, self.row))
        row, col, rule, text = self.row[order], self.col[order], self.rule[order], text[order]
        same = (row[1:] == row[:-1]) & (rule[1:] == rule[:-1]) & (text[1:] == text[:-1])
        first = np.flatnonzero(np.append(True, ~(same & (col[1:] == col[:-1] + 1))))
        length = np.diff(np.append(first, len(row)))
        return row[first], col[first], length, rule[first], self.detail[order][first]


def local_days(start: pd.Timestamp, n: int, cfg: VeeConfig) -> np.ndarray:
    """Column index at which each local day of the window begins, and ``n`` at the end: the
    bounds ``[b[k], b[k+1])`` of the columns of each (possibly partial) local day."""
    idx = pd.date_range(start.tz_convert("UTC"), periods=n, freq=cfg.step)
    day = idx.tz_convert(cfg.timezone).normalize().asi8
    first = np.flatnonzero(np.diff(day, prepend=day[0] - 1) != 0) if n else np.zeros(0, int)
    return np.append(first, n).astype(np.int64)


def _g(values: np.ndarray) -> np.ndarray:
    return np.array([f"{v:g}" for v in values.tolist()], dtype=object)


def _zero_runs(values: np.ndarray, min_run: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Cells in runs of at least ``min_run`` consecutive zero intervals: rows, cols, run sizes."""
    n_m, n_i = values.shape
    zero = values == 0
    padded = np.zeros((n_m, n_i + 2), np.int8)
    padded[:, 1:-1] = zero
    d = np.diff(padded, axis=1)
    r0, c0 = np.nonzero(d == 1)
    _, c1 = np.nonzero(d == -1)
    size = c1 - c0
    keep = size >= min_run
    r0, c0, size = r0[keep], c0[keep], size[keep]
    total = int(size.sum())
    run = np.repeat(np.arange(len(size)), size)
    offset = np.arange(total) - np.repeat(np.cumsum(size) - size, size)
    return r0[run], c0[run] + offset, size[run]


def _spikes(
    values: np.ndarray, bounds: np.ndarray, cfg: VeeConfig
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per local day: the highest interval (first of equals) against the third-highest."""
    rows, cols, details = [], [], []
    filled = np.where(np.isnan(values), -np.inf, values)
    for a, b in zip(bounds[:-1].tolist(), bounds[1:].tolist(), strict=True):
        day = filled[:, a:b]
        if day.shape[1] < 3:
            continue
        present = np.isfinite(day).sum(axis=1)
        at = np.argmax(day, axis=1)
        highest = day[np.arange(len(day)), at]
        third = -np.partition(-day, 2, axis=1)[:, 2]
        hit = (
            (present >= 3)
            & (highest >= cfg.spike_min_kwh)
            & (highest > cfg.spike_ratio * np.maximum(third, 0.0))
        )
        r = np.flatnonzero(hit)
        rows.append(r)
        cols.append(at[r] + a)
        details.append(
            np.array(
                [
                    f"{h:g} kWh against a third-highest of {t:g} kWh"
                    for h, t in zip(highest[r].tolist(), third[r].tolist(), strict=True)
                ],
                dtype=object,
            )
        )
    if not rows:
        return np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0, object)
    return np.concatenate(rows), np.concatenate(cols), np.concatenate(details)


def register_spans(
    regs: Registers, start: pd.Timestamp, n: int, cfg: VeeConfig
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Consecutive register reads of each row as column spans: row, first column, end column
    (exclusive: intervals wholly between the reads) and the register's advance in kWh."""
    same = regs.row[1:] == regs.row[:-1]
    step = cfg.step.value
    rel0 = regs.at_ns[:-1][same] - start.value
    rel1 = regs.at_ns[1:][same] - start.value
    c0 = np.clip(-(-rel0 // step), 0, n)
    c1 = np.clip(rel1 // step, 0, n)
    return regs.row[:-1][same], c0, np.maximum(c1, c0), regs.kwh[1:][same] - regs.kwh[:-1][same]


def _register_mismatch(
    values: np.ndarray, regs: Registers, start: pd.Timestamp, cfg: VeeConfig
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    n_i = values.shape[1]
    row, c0, c1, advance = register_spans(regs, start, n_i, cfg)
    rows_with, at = np.unique(row, return_inverse=True)
    part = values[rows_with]
    cum = np.zeros((len(rows_with), n_i + 1))
    np.cumsum(np.where(np.isnan(part), 0.0, part), axis=1, out=cum[:, 1:])
    total = cum[at, c1] - cum[at, c0]
    bad = np.abs(advance - total) > cfg.register_tolerance_kwh
    row, c0, c1, advance, total = row[bad], c0[bad], c1[bad], advance[bad], total[bad]
    size = c1 - c0
    span = np.repeat(np.arange(len(size)), size)
    cols = (
        np.repeat(c0, size) + np.arange(int(size.sum())) - np.repeat(np.cumsum(size) - size, size)
    )
    rows = row[span]
    there = ~np.isnan(values[rows, cols])
    text = np.array(
        [
            f"intervals add up to {t:g} kWh, the register advanced {a:g} kWh"
            for t, a in zip(total.tolist(), advance.tolist(), strict=True)
        ],
        dtype=object,
    )
    return rows[there], cols[there], text[span][there]


def validate_matrix(
    values: np.ndarray,
    *,
    start: pd.Timestamp,
    cfg: VeeConfig,
    active: bool | np.ndarray = True,
    registers: Registers | None = None,
) -> MatrixFlags:
    """Every rule over every row of ``values`` (kWh, NaN where missing) from ``start``.

    Parameters
    ----------
    values : float64 [n_meters, n_intervals], kWh per interval, NaN where no reading.
    start : aware instant of the first column, on an interval boundary.
    cfg : the rules' limits (kWh per interval) and the site's time zone (local days).
    active : whether each row's meter is active (zero runs are suspect), one or per row.
    registers : register reads of the rows (cumulative kWh), for the register mismatch rule.
    """
    n_m, n_i = values.shape
    parts: list[tuple[np.ndarray, np.ndarray, int, np.ndarray]] = []
    r, c = np.nonzero(np.isnan(values))
    parts.append((r, c, RULE_CODE["gap"], np.full(len(r), "no reading", dtype=object)))
    with np.errstate(invalid="ignore"):
        r, c = np.nonzero(values < 0)
        parts.append((r, c, RULE_CODE["negative"], _g(values[r, c]) + " kWh"))
        if cfg.high_kwh is not None:
            r, c = np.nonzero(values > cfg.high_kwh)
            text = _g(values[r, c]) + f" kWh > {cfg.high_kwh:g}"
            parts.append((r, c, RULE_CODE["high"], text))
        if cfg.low_kwh is not None:
            r, c = np.nonzero(values < cfg.low_kwh)
            parts.append((r, c, RULE_CODE["low"], _g(values[r, c]) + f" kWh < {cfg.low_kwh:g}"))
    on = np.broadcast_to(np.asarray(active, bool), (n_m,))
    r, c, size = _zero_runs(np.where(on[:, None], values, np.nan), cfg.zero_run_intervals)
    text = np.array([f"{n} zero intervals in a row" for n in size.tolist()], dtype=object)
    parts.append((r, c, RULE_CODE["zero_on_active"], text))
    r, c, text = _spikes(values, local_days(start, n_i, cfg), cfg)
    parts.append((r, c, RULE_CODE["spike"], text))
    if registers is not None and len(registers.row) >= 2:
        r, c, text = _register_mismatch(values, registers, start, cfg)
        parts.append((r, c, RULE_CODE["register_mismatch"], text))
    row = np.concatenate([p[0] for p in parts]).astype(np.int64)
    col = np.concatenate([p[1] for p in parts]).astype(np.int64)
    rule = np.concatenate([np.full(len(p[0]), p[2], np.int64) for p in parts])
    detail = np.concatenate([p[3] for p in parts])
    order = np.lexsort((_NAME_RANK[rule], col, row))
    return MatrixFlags(row=row[order], col=col[order], rule=rule[order], detail=detail[order])
