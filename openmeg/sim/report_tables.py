"""The study report's numbers, as pure functions over a run's arrays.

Energies in kWh, powers in kW, durations in hours, voltages per unit of the nominal voltage.
Every function takes plain arrays and an index and returns numbers or small records, so that
``summary.json`` and the tables of ``report.html`` come from one computation.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from openmeg.core import en50160


def monthly_energy_kwh(
    index: pd.DatetimeIndex, timezone: str, rows: np.ndarray, ids: list[str], dt_h: float
) -> dict[str, dict[str, float]]:
    """Energy of each row of ``rows[len(ids), T]`` (kW per step) per local month, kWh.

    Returns ``{"YYYY-MM": {id: kWh}}`` in time order, rounded to 6 decimals.
    """
    local = index.tz_convert(timezone)
    code = local.year.to_numpy() * 100 + local.month.to_numpy()
    out: dict[str, dict[str, float]] = {}
    for c in np.unique(code):
        mask = code == c
        sums = rows[:, mask].sum(axis=1) * dt_h
        key = f"{int(c) // 100:04d}-{int(c) % 100:02d}"
        out[key] = {d: round(float(s), 6) for d, s in zip(ids, sums, strict=True)}
    return out


def capacity_factor(energy_kwh: float, rating_kw: float, hours: float) -> float:
    """Energy over what the rating would give running flat out for ``hours`` (fraction)."""
    return energy_kwh / (rating_kw * hours) if rating_kw > 0 and hours > 0 else 0.0


def running_hours_and_starts(
    p_kw: np.ndarray, dt_h: float, *, was_on: bool = False
) -> tuple[float, int]:
    """Hours with output above zero, and the number of starts (off to on) of one unit."""
    on = np.asarray(p_kw) > 0.0
    if on.size == 0:
        return 0.0, 0
    rises = np.diff(np.concatenate(([was_on], on)).astype(np.int8)) == 1
    return float(on.sum()) * dt_h, int(rises.sum())


def level_throughput_kwh(level_kwh: np.ndarray, initial_kwh: float) -> tuple[float, float]:
    """What a store's level rose and fell by over the run, summed step by step, kWh:
    ``(charged, discharged)``, both positive."""
    steps = np.diff(np.concatenate(([initial_kwh], np.asarray(level_kwh, dtype=float))))
    return float(steps[steps > 0].sum()), float(-steps[steps < 0].sum())


@dataclass(frozen=True, kw_only=True)
class Excursion:
    """One bus outside Un ± 10 % at consecutive power flows."""

    bus: str
    start: pd.Timestamp
    """The first power flow outside the band."""
    end: pd.Timestamp
    """The last power flow outside the band."""
    samples: int
    extreme_pu: float
    """The lowest voltage of an excursion below the band, or the highest above it."""
    band: int
    """The worst :mod:`openmeg.core.en50160` band reached (``TOLERATED`` or ``OUTSIDE``)."""


def excursions(index: pd.DatetimeIndex, vm_pu: np.ndarray, buses: list[str]) -> list[Excursion]:
    """Every run of consecutive samples of ``vm_pu[T, len(buses)]`` outside Un ± 10 %, per bus
    and side (below or above), in bus order then time."""
    vm = np.asarray(vm_pu, dtype=float)
    out: list[Excursion] = []
    bands = en50160.band(vm)
    for j, bus in enumerate(buses):
        for side in (-1, 1):
            outside = (bands[:, j] != en50160.WITHIN) & (np.sign(vm[:, j] - 1.0) == side)
            edges = np.diff(np.concatenate(([0], outside.astype(np.int8), [0])))
            for s, e in zip(np.flatnonzero(edges == 1), np.flatnonzero(edges == -1), strict=True):
                seg = vm[s:e, j]
                out.append(
                    Excursion(
                        bus=bus,
                        start=index[s],
                        end=index[e - 1],
                        samples=int(e - s),
                        extreme_pu=float(seg.min() if side < 0 else seg.max()),
                        band=int(bands[s:e, j].max()),
                    )
                )
    out.sort(key=lambda x: (buses.index(x.bus), x.start))
    return out


def duration_curve(p_kw: np.ndarray) -> np.ndarray:
    """The values sorted from the largest to the smallest (a load duration curve)."""
    return np.sort(np.asarray(p_kw, dtype=float))[::-1]


def hour_of_week_quantiles(
    local_index: pd.DatetimeIndex,
    values: np.ndarray,
    quantiles: tuple[float, ...] = (0.1, 0.5, 0.9),
) -> pd.DataFrame:
    """Quantiles of ``values`` per hour of the week (0 = Monday 00:00 local .. 167), one column
    per quantile; ``local_index`` is in the time zone the week is read in."""
    how = local_index.dayofweek.to_numpy() * 24 + local_index.hour.to_numpy()
    frame = pd.DataFrame({"how": how, "v": np.asarray(values, dtype=float)})
    table = frame.groupby("how")["v"].quantile(list(quantiles)).unstack()
    return table.reindex(range(168))


def daily_min_max(local_index: pd.DatetimeIndex, values: np.ndarray) -> pd.DataFrame:
    """Daily minimum and maximum (columns ``min`` and ``max``) of ``values`` per local day."""
    naive = local_index.tz_localize(None) if local_index.tz is not None else local_index
    frame = pd.DataFrame({"v": np.asarray(values, dtype=float)}, index=naive)
    return frame["v"].resample("1D").agg(["min", "max"])
