"""Flexible loads: EV charging sessions and shiftable loads, as demand series in kW."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from openmeg.sim.physics.pv import FloatArray


@dataclass(frozen=True, kw_only=True, slots=True)
class Session:
    """One EV at the charger: from ``arrival_step`` for ``dwell_steps`` wanting ``energy_kwh``."""

    arrival_step: int
    dwell_steps: int
    energy_kwh: float


def ev_sessions(
    n_steps: int,
    step_h: float,
    first_local_hour: float,
    *,
    sessions_per_day: float,
    arrival_h_mean: float,
    dwell_h_mean: float,
    energy_kwh_mean: float,
    seed: int,
) -> list[Session]:
    """Seeded sessions: Poisson count per day, normal arrival (sd 1.5 h), dwell and energy."""
    rng = np.random.default_rng(seed)
    steps_per_day = round(24 / step_h)
    days = int(np.ceil(n_steps / steps_per_day)) + 1
    out: list[Session] = []
    for day in range(days):
        for _ in range(int(rng.poisson(sessions_per_day))):
            arrival_h = day * 24 + rng.normal(arrival_h_mean, 1.5) - first_local_hour
            dwell_h = float(np.clip(rng.normal(dwell_h_mean, dwell_h_mean * 0.25), 0.5, 24))
            energy = float(np.clip(rng.normal(energy_kwh_mean, energy_kwh_mean * 0.3), 1, None))
            start = round(arrival_h / step_h)
            if 0 <= start < n_steps:
                out.append(
                    Session(
                        arrival_step=start, dwell_steps=round(dwell_h / step_h), energy_kwh=energy
                    )
                )
    return sorted(out, key=lambda s: s.arrival_step)


def ev_demand_kw(
    sessions: list[Session], n_steps: int, step_h: float, p_max_kw: float
) -> FloatArray:
    """Charge each session at ``p_max_kw`` from arrival until its energy is in or it leaves.

    One car at a time: a car that arrives while the charger is busy leaves without charging.
    The last step of a session charges only what is still missing.
    """
    p = np.zeros(n_steps)
    busy_until = -1
    for s in sessions:
        if s.arrival_step < busy_until:
            continue
        full_steps = int(s.energy_kwh // (p_max_kw * step_h))
        rest_kwh = s.energy_kwh - full_steps * p_max_kw * step_h
        n_full = min(full_steps, s.dwell_steps)
        end = min(s.arrival_step + n_full, n_steps)
        p[s.arrival_step : end] = p_max_kw
        if n_full < s.dwell_steps and rest_kwh > 0 and end < n_steps:
            p[end] = rest_kwh / step_h
            end += 1
        busy_until = s.arrival_step + s.dwell_steps
    return p


def shiftable_demand_kw(
    local_hour: FloatArray,
    day_of_run: np.ndarray,
    *,
    p_kw: float,
    run_steps: int,
    window_start_h: int,
    window_end_h: int,
    cost: FloatArray,
) -> FloatArray:
    """Run ``p_kw`` for ``run_steps`` once a day, starting where the window's ``cost`` is least.

    ``cost`` is any per-step signal to avoid (e.g. forecast net demand); ties go to the earliest
    start. Days whose window is cut off by the run's edges are left out.
    """
    n = local_hour.size
    p = np.zeros(n)
    in_window = (local_hour >= window_start_h) & (local_hour < window_end_h)
    csum = np.concatenate(([0.0], np.cumsum(cost)))
    for day in np.unique(day_of_run):
        idx = np.flatnonzero(in_window & (day_of_run == day))
        if idx.size < run_steps or idx[-1] - idx[0] + 1 != idx.size:
            continue
        starts = idx[: idx.size - run_steps + 1]
        window_cost = csum[starts + run_steps] - csum[starts]
        best = int(starts[int(np.argmin(window_cost))])
        p[best : best + run_steps] = p_kw
    return p
