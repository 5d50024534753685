"""Estimation of missing or invalid intervals (the E of VEE): pure functions.

Gaps of up to an hour are filled by linear interpolation between the readings on either side.
Longer gaps take the profile of like days (the same weekday in the previous weeks, at the same
local clock time, so daylight-saving days line up) scaled so that the gap holds what the
registers say it must; without registers the profile is taken as it is.

The per-series reference of ``estimate_matrix``, which every VEE run uses.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from openmeg.operation.mdms.vee import VeeConfig


def gap_runs(index: pd.DatetimeIndex, cfg: VeeConfig) -> list[pd.DatetimeIndex]:
    """Split missing interval starts into runs of consecutive intervals."""
    if index.empty:
        return []
    idx = index.sort_values()
    breaks = np.flatnonzero(np.diff(idx.asi8) != cfg.step.value) + 1
    return [pd.DatetimeIndex(part) for part in np.split(idx, breaks)]


def interpolate(series: pd.Series, gap: pd.DatetimeIndex, cfg: VeeConfig) -> pd.Series:
    """Linear interpolation across ``gap`` between the readings just before and after it."""
    before, after = gap[0] - cfg.step, gap[-1] + cfg.step
    if before not in series.index or after not in series.index:
        raise ValueError("interpolation needs a reading on each side of the gap")
    v0, v1 = float(series[before]), float(series[after])
    n = len(gap) + 1
    return pd.Series([v0 + (v1 - v0) * (i + 1) / n for i in range(len(gap))], index=gap)


def like_day_profile(
    history: pd.Series, gap: pd.DatetimeIndex, cfg: VeeConfig, *, weeks: int = 4
) -> pd.Series:
    """For each gap interval, the mean of the same local weekday and clock time in up to
    ``weeks`` previous weeks (only readings that are there count)."""
    tz = cfg.timezone
    local_hist = history.copy()
    local_hist.index = history.index.tz_convert(tz)
    key_hist = pd.Series(
        local_hist.to_numpy(),
        index=pd.MultiIndex.from_arrays(
            [
                local_hist.index.tz_localize(None).normalize(),
                local_hist.index.hour,
                local_hist.index.minute,
            ]
        ),
    )
    values = []
    for t in gap.tz_convert(tz):
        day = t.tz_localize(None).normalize()
        samples = []
        for w in range(1, weeks + 1):
            key = (day - pd.Timedelta(weeks=w), t.hour, t.minute)
            if key in key_hist.index:
                got = key_hist.loc[key]
                samples.extend(np.atleast_1d(np.asarray(got, dtype=float)).tolist())
        values.append(float(np.mean(samples)) if samples else np.nan)
    return pd.Series(values, index=gap)


def estimate(
    series: pd.Series,
    missing: pd.DatetimeIndex,
    cfg: VeeConfig,
    *,
    history: pd.Series | None = None,
    registers: pd.Series | None = None,
    max_interpolate_intervals: int = 4,
) -> tuple[pd.Series, pd.Series]:
    """Estimates for the ``missing`` intervals: ``(values, method)`` by interval start.

    ``registers`` (cumulative kWh by read instant) scale a like-day estimate so that the
    intervals between the reads around the gap add up to the register's advance."""
    values: list[pd.Series] = []
    methods: list[pd.Series] = []
    for gap in gap_runs(missing, cfg):
        if len(gap) <= max_interpolate_intervals:
            try:
                est = interpolate(series, gap, cfg)
                values.append(est)
                methods.append(pd.Series("interpolation", index=gap))
                continue
            except ValueError:
                pass
        profile = like_day_profile(history if history is not None else series, gap, cfg)
        if profile.isna().any():
            raise ValueError(
                f"no like-day history for {profile.index[profile.isna()][0]}: "
                "cannot estimate this gap"
            )
        method = "like_day"
        if registers is not None:
            regs = registers.sort_index()
            before = regs[regs.index <= gap[0]]
            after = regs[regs.index >= gap[-1] + cfg.step]
            if not before.empty and not after.empty:
                t0, t1 = before.index[-1], after.index[0]
                known = series[(series.index >= t0) & (series.index + cfg.step <= t1)]
                known = known[~known.index.isin(missing)]
                target = float(after.iloc[0] - before.iloc[-1]) - float(known.sum())
                total = float(profile.sum())
                if total > 0 and target >= 0:
                    profile = profile * (target / total)
                    method = "like_day_scaled"
        values.append(profile)
        methods.append(pd.Series(method, index=gap))
    if not values:
        empty = pd.DatetimeIndex([], tz="UTC")
        return pd.Series([], index=empty, dtype=float), pd.Series([], index=empty, dtype=str)
    return pd.concat(values).sort_index(), pd.concat(methods).sort_index()
