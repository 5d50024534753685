"""Battery: state of charge under charge/discharge efficiency, power and SoC limits.

Sign: ``p_kw > 0`` discharges into the MEG bus, ``p_kw < 0`` charges. Compiled with numba so the
same function serves one step of the live plant and a year of simulation.
"""

from __future__ import annotations

from openmeg.core.jit import njit


@njit
def battery_limits_kw(
    soc: float,
    dt_h: float,
    capacity_kwh: float,
    p_charge_max_kw: float,
    p_discharge_max_kw: float,
    eta_charge: float,
    eta_discharge: float,
    soc_min: float,
    soc_max: float,
) -> tuple[float, float]:
    """``(max_charge_kw, max_discharge_kw)`` this step, both >= 0."""
    room_kwh = max(0.0, (soc_max - soc) * capacity_kwh)
    avail_kwh = max(0.0, (soc - soc_min) * capacity_kwh)
    max_charge = min(p_charge_max_kw, room_kwh / (eta_charge * dt_h))
    max_discharge = min(p_discharge_max_kw, avail_kwh * eta_discharge / dt_h)
    return max_charge, max_discharge


@njit
def battery_step(
    soc: float,
    p_request_kw: float,
    dt_h: float,
    capacity_kwh: float,
    p_charge_max_kw: float,
    p_discharge_max_kw: float,
    eta_charge: float,
    eta_discharge: float,
    soc_min: float,
    soc_max: float,
) -> tuple[float, float]:
    """Apply a power request for one step; return ``(p_kw, soc_after)`` within every limit."""
    max_c, max_d = battery_limits_kw(
        soc,
        dt_h,
        capacity_kwh,
        p_charge_max_kw,
        p_discharge_max_kw,
        eta_charge,
        eta_discharge,
        soc_min,
        soc_max,
    )
    p = min(max(p_request_kw, -max_c), max_d)
    if p >= 0.0:
        soc_after = soc - p * dt_h / (eta_discharge * capacity_kwh)
    else:
        soc_after = soc - p * dt_h * eta_charge / capacity_kwh
    return p, min(max(soc_after, soc_min), soc_max) if p != 0.0 else soc
