"""Wind turbine output from a power curve of windpowerlib's turbine library.

Wind speeds in m/s, heights in m, powers in kW.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]


def hub_wind_speed_m_s(
    wind_m_s: FloatArray, *, measured_at_m: float, hub_height_m: float, roughness_length_m: float
) -> FloatArray:
    """Wind speed at hub height by the logarithmic profile (neutral stability)."""
    factor = np.log(hub_height_m / roughness_length_m) / np.log(measured_at_m / roughness_length_m)
    speed: FloatArray = np.asarray(wind_m_s, dtype=float) * factor
    return speed


def power_from_curve_kw(
    hub_wind_m_s: FloatArray,
    speeds_m_s: FloatArray,
    powers_kw: FloatArray,
    *,
    scale: float = 1.0,
) -> FloatArray:
    """Linear interpolation on the power curve; zero below its first and above its last speed."""
    p = np.interp(hub_wind_m_s, speeds_m_s, powers_kw, left=0.0, right=0.0)
    return np.clip(p, 0.0, None) * scale
