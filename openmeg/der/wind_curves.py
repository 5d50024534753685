"""Wind turbine power curves from windpowerlib's bundled turbine library (offline)."""

from __future__ import annotations

from functools import cache


@cache
def library_curve(turbine_type: str) -> tuple[tuple[float, ...], tuple[float, ...], float]:
    """``(wind_speeds_m_s, powers_kw, nominal_kw)`` of a turbine in windpowerlib's library."""
    import warnings

    from windpowerlib import WindTurbine

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # windpowerlib only warns about an unknown type
        turbine = WindTurbine(turbine_type=turbine_type, hub_height=100.0)
    if turbine.power_curve is None:
        raise ValueError(
            f"turbine type {turbine_type!r} is not in windpowerlib's library with a power curve"
        )
    curve = turbine.power_curve
    return (
        tuple(float(v) for v in curve["wind_speed"]),
        tuple(float(p) / 1000.0 for p in curve["value"]),
        float(turbine.nominal_power) / 1000.0,
    )
