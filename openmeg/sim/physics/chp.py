"""CHP unit: electric and heat output, minimum load, ramp limits, minimum up/down time, fuel.

Powers in kW, times in minutes. ``state_min`` counts the minutes spent in the current on/off state.
"""

from __future__ import annotations

from openmeg.core.jit import njit


@njit
def chp_step(
    on: bool,
    state_min: float,
    p_prev_kw: float,
    p_request_kw: float,
    dt_min: float,
    p_min_kw: float,
    p_max_kw: float,
    ramp_kw_per_min: float,
    min_up_min: float,
    min_down_min: float,
) -> tuple[bool, float, float]:
    """Apply an electric power request (0 asks to stop); return ``(on, state_min, p_kw)``.

    A start goes straight to minimum load; a running unit moves at most ``ramp * dt`` per step
    and stays within ``[p_min, p_max]``; it may stop only after ``min_up_min`` and start only
    after ``min_down_min``.
    """
    want_on = p_request_kw > 0.0
    if on and not want_on and state_min >= min_up_min:
        return False, dt_min, 0.0
    if not on and want_on and state_min >= min_down_min:
        return True, dt_min, p_min_kw
    if not on:
        return False, state_min + dt_min, 0.0
    target = min(max(p_request_kw, p_min_kw), p_max_kw)
    step = ramp_kw_per_min * dt_min
    p = min(max(target, p_prev_kw - step), p_prev_kw + step)
    return True, state_min + dt_min, min(max(p, p_min_kw), p_max_kw)


@njit
def chp_heat_kw(p_el_kw: float, eta_el: float, eta_th: float) -> float:
    """Heat output that goes with an electric output, kW."""
    return p_el_kw * eta_th / eta_el


@njit
def fuel_kw(p_el_kw: float, eta_el: float) -> float:
    """Fuel power (lower heating value) that an electric output burns, kW."""
    return p_el_kw / eta_el


@njit
def ramp_toward(p_prev_kw: float, target_kw: float, ramp_kw: float, lo: float, hi: float) -> float:
    """Move from ``p_prev_kw`` toward ``target_kw`` by at most ``ramp_kw``, within ``[lo, hi]``."""
    p = min(max(target_kw, p_prev_kw - ramp_kw), p_prev_kw + ramp_kw)
    return min(max(p, lo), hi)
