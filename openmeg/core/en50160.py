"""Supply voltage against EN 50160 (low-voltage networks), on whole arrays.

EN 50160 §4.2.2 asks of the 10-minute mean r.m.s. supply voltage, in every week:
- 95 % of the means within Un ± 10 %;
- all of them within Un + 10 % / - 15 %.

Voltages here are per unit of the nominal voltage (1.0 = Un). :func:`band` says where each value
lies; :func:`assess` checks each bus and week of a series of voltages as the standard asks and
lists every week of a bus that breaks either rule.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

BAND_PU = 0.10
"""Un ± 10 %: where 95 % of a week's 10-minute means must lie."""
LOW_ALL_PU = 0.85
"""Un - 15 %: no 10-minute mean below it."""
HIGH_ALL_PU = 1.10
"""Un + 10 %: no 10-minute mean above it."""
SHARE_WITHIN = 0.95
"""The share of a week's 10-minute means that must lie within Un ± 10 %."""

WITHIN = 0
"""Within Un ± 10 %."""
TOLERATED = 1
"""Outside Un ± 10 % but within + 10 % / - 15 %: allowed for 5 % of a week."""
OUTSIDE = 2
"""Below Un - 15 % or above Un + 10 %: never allowed."""

BAND_NAMES = {WITHIN: "within ±10 %", TOLERATED: "outside ±10 %", OUTSIDE: "outside +10/−15 %"}


def band(vm_pu: np.ndarray) -> np.ndarray:
    """Where each voltage lies: :data:`WITHIN`, :data:`TOLERATED` or :data:`OUTSIDE` (int8).
    NaN (no measurement) counts as :data:`WITHIN`: it breaks no rule."""
    v = np.asarray(vm_pu, dtype=float)
    out = np.zeros(v.shape, dtype=np.int8)
    out[(v < 1.0 - BAND_PU) | (v > 1.0 + BAND_PU)] = TOLERATED
    out[(v < LOW_ALL_PU) | (v > HIGH_ALL_PU)] = OUTSIDE
    return out


@dataclass(frozen=True)
class WeekAssessment:
    """One bus in one week (weeks start on Monday 00:00 of the index's time zone)."""

    bus: str
    week: pd.Timestamp
    means: int
    """10-minute means with a value."""
    share_within: float
    """Share of them within Un ± 10 %."""
    min_pu: float
    max_pu: float
    outside: int
    """10-minute means below Un - 15 % or above Un + 10 %."""

    @property
    def compliant(self) -> bool:
        return self.outside == 0 and self.share_within >= SHARE_WITHIN

    @property
    def why(self) -> str:
        """What breaks the standard, in words ("" when compliant)."""
        reasons = []
        if self.share_within < SHARE_WITHIN:
            reasons.append(f"{self.share_within:.1%} of 10-minute means within ±10 % (95 % asked)")
        if self.outside:
            reasons.append(f"{self.outside} 10-minute means outside +10/−15 %")
        return "; ".join(reasons)


def ten_minute_means(index: pd.DatetimeIndex, vm_pu: np.ndarray) -> pd.DataFrame:
    """The 10-minute means of voltages ``vm_pu[T, buses]`` sampled at ``index`` (aware)."""
    frame = pd.DataFrame(np.asarray(vm_pu, dtype=float), index=index)
    return frame.resample("10min").mean()


def assess(index: pd.DatetimeIndex, vm_pu: np.ndarray, buses: list[str]) -> list[WeekAssessment]:
    """Every bus and week of ``vm_pu[T, len(buses)]`` checked as EN 50160 asks."""
    means = ten_minute_means(index, vm_pu)
    means.columns = pd.Index(buses)
    naive = means.index.tz_localize(None) if means.index.tz is not None else means.index
    week_start = (naive.normalize() - pd.to_timedelta(naive.dayofweek, unit="D")).to_numpy()
    out: list[WeekAssessment] = []
    for week in np.unique(week_start):
        rows = means.to_numpy()[week_start == week]
        counted = np.isfinite(rows)
        n = counted.sum(axis=0)
        b = band(rows)
        within = ((b == WITHIN) & counted).sum(axis=0)
        outside = (b == OUTSIDE).sum(axis=0)
        lo = np.where(counted, rows, np.inf).min(axis=0)
        hi = np.where(counted, rows, -np.inf).max(axis=0)
        stamp = pd.Timestamp(week)
        if means.index.tz is not None:
            stamp = stamp.tz_localize(means.index.tz)
        for j, bus in enumerate(buses):
            if n[j] == 0:
                continue
            out.append(
                WeekAssessment(
                    bus=bus,
                    week=stamp,
                    means=int(n[j]),
                    share_within=float(within[j] / n[j]),
                    min_pu=float(lo[j]),
                    max_pu=float(hi[j]),
                    outside=int(outside[j]),
                )
            )
    return out


def violations(assessments: list[WeekAssessment]) -> list[WeekAssessment]:
    """The weeks of a bus that break EN 50160."""
    return [a for a in assessments if not a.compliant]
