"""Validation of interval readings (the V of VEE): pure functions over one meter channel.

A series is indexed by the interval start (aware, UTC) with the interval's energy in kWh. Days
(for the spike rule) are local days of the site's time zone, so a daylight-saving day has 92 or
100 quarter hours. Every rule returns flags ``(interval_start, rule, detail)``; the rules are
those of common utility VEE practice.

These per-series functions are the readable reference of the rules; ``vee_matrix`` applies the
same rules to [meters x intervals] arrays (the path every VEE run takes) and is tested against
them meter by meter.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

RULES = (
    "time_tolerance",
    "gap",
    "negative",
    "zero_on_active",
    "spike",
    "high",
    "low",
    "register_mismatch",
)


@dataclass(frozen=True, kw_only=True)
class VeeConfig:
    """Limits of the validation rules (energies per interval in kWh)."""

    interval_min: int = 15
    timezone: str = "UTC"
    time_tolerance_s: float = 60.0
    spike_ratio: float = 4.0
    spike_min_kwh: float = 0.5
    high_kwh: float | None = None
    low_kwh: float | None = None
    zero_run_intervals: int = 96
    register_tolerance_kwh: float = 0.01

    @property
    def step(self) -> pd.Timedelta:
        return pd.Timedelta(minutes=self.interval_min)


def expected_index(start: pd.Timestamp, end: pd.Timestamp, cfg: VeeConfig) -> pd.DatetimeIndex:
    """Every interval start in ``[start, end)``, UTC."""
    return pd.date_range(
        start.tz_convert("UTC"), end.tz_convert("UTC"), freq=cfg.step, inclusive="left"
    )


def _flags(index: pd.Index, rule: str, detail: list[str] | str) -> pd.DataFrame:
    details = detail if isinstance(detail, list) else [detail] * len(index)
    return pd.DataFrame(
        {"interval_start": pd.DatetimeIndex(index), "rule": rule, "detail": details}
    )


def check_gaps(
    series: pd.Series, start: pd.Timestamp, end: pd.Timestamp, cfg: VeeConfig
) -> pd.DataFrame:
    missing = expected_index(start, end, cfg).difference(series.index)
    return _flags(missing, "gap", "no reading")


def check_time_tolerance(meter_clock: pd.Series, cfg: VeeConfig) -> pd.DataFrame:
    """``meter_clock``: the meter's own time stamp of each interval's end, by interval start."""
    drift = (meter_clock - (meter_clock.index + cfg.step)).dt.total_seconds()
    bad = drift[drift.abs() > cfg.time_tolerance_s]
    return _flags(bad.index, "time_tolerance", [f"meter clock off by {d:+.0f} s" for d in bad])


def check_negative(series: pd.Series) -> pd.DataFrame:
    bad = series[series < 0]
    return _flags(bad.index, "negative", [f"{v:g} kWh" for v in bad])


def check_zero_on_active(series: pd.Series, cfg: VeeConfig, *, active: bool) -> pd.DataFrame:
    """Runs of at least ``zero_run_intervals`` consecutive zero intervals on an active meter."""
    if not active or series.empty:
        return _flags(pd.DatetimeIndex([], tz="UTC"), "zero_on_active", [])
    s = series.sort_index()
    zero = (s == 0).to_numpy()
    contiguous = np.diff(s.index.asi8, prepend=s.index.asi8[0]) == cfg.step.value
    run_id = np.cumsum(~zero | ~contiguous)
    runs = pd.Series(run_id[zero], index=s.index[zero])
    sizes = runs.map(runs.value_counts())
    bad = sizes[sizes >= cfg.zero_run_intervals]
    return _flags(bad.index, "zero_on_active", [f"{n} zero intervals in a row" for n in bad])


def check_spikes(series: pd.Series, cfg: VeeConfig) -> pd.DataFrame:
    """Per local day: the highest interval against the third-highest."""
    if series.empty:
        return _flags(pd.DatetimeIndex([], tz="UTC"), "spike", [])
    local_day = series.index.tz_convert(cfg.timezone).date
    out_index, details = [], []
    for _, day in series.groupby(local_day):
        if len(day) < 3:
            continue
        top = day.nlargest(3)
        highest, third = float(top.iloc[0]), float(top.iloc[2])
        if highest >= cfg.spike_min_kwh and highest > cfg.spike_ratio * max(third, 0.0):
            out_index.append(top.index[0])
            details.append(f"{highest:g} kWh against a third-highest of {third:g} kWh")
    return _flags(pd.DatetimeIndex(out_index, tz="UTC"), "spike", details)


def check_limits(series: pd.Series, cfg: VeeConfig) -> pd.DataFrame:
    frames = []
    if cfg.high_kwh is not None:
        bad = series[series > cfg.high_kwh]
        frames.append(_flags(bad.index, "high", [f"{v:g} kWh > {cfg.high_kwh:g}" for v in bad]))
    if cfg.low_kwh is not None:
        bad = series[series < cfg.low_kwh]
        frames.append(_flags(bad.index, "low", [f"{v:g} kWh < {cfg.low_kwh:g}" for v in bad]))
    return (
        pd.concat(frames, ignore_index=True)
        if frames
        else _flags(pd.DatetimeIndex([], tz="UTC"), "high", [])
    )


def check_registers(series: pd.Series, registers: pd.Series, cfg: VeeConfig) -> pd.DataFrame:
    """Between consecutive register reads, the intervals must add up to the register's advance.

    ``registers``: cumulative kWh by read instant (UTC)."""
    regs = registers.sort_index()
    frames = []
    for (t0, r0), (t1, r1) in zip(regs.items(), list(regs.items())[1:], strict=False):
        inside = series[(series.index >= t0) & (series.index + cfg.step <= t1)]
        total = float(inside.sum())
        if abs((r1 - r0) - total) > cfg.register_tolerance_kwh:
            detail = f"intervals add up to {total:g} kWh, the register advanced {r1 - r0:g} kWh"
            frames.append(_flags(inside.index, "register_mismatch", detail))
    return (
        pd.concat(frames, ignore_index=True)
        if frames
        else _flags(pd.DatetimeIndex([], tz="UTC"), "register_mismatch", [])
    )


def validate(
    series: pd.Series,
    *,
    start: pd.Timestamp,
    end: pd.Timestamp,
    cfg: VeeConfig,
    active: bool = True,
    meter_clock: pd.Series | None = None,
    registers: pd.Series | None = None,
) -> pd.DataFrame:
    """Every rule over one meter channel from ``start`` to ``end``; flags sorted by time."""
    frames = [
        check_gaps(series, start, end, cfg),
        check_negative(series),
        check_zero_on_active(series, cfg, active=active),
        check_spikes(series, cfg),
        check_limits(series, cfg),
    ]
    if meter_clock is not None:
        frames.append(check_time_tolerance(meter_clock, cfg))
    if registers is not None:
        frames.append(check_registers(series, registers, cfg))
    flags = (
        pd.concat([f for f in frames if not f.empty], ignore_index=True)
        if any(not f.empty for f in frames)
        else frames[0]
    )
    return flags.sort_values(["interval_start", "rule"], ignore_index=True)
