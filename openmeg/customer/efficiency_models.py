"""What each piece of BAS equipment is expected to draw, from its description alone.

Temperatures in °C, powers in kW. The heat pump's expected COP is a Carnot-fraction model: the
fraction of the Carnot COP it reaches is fitted at the rating point of its ``cop_nominal``
(EN 14511 heating, outdoor air 7 °C, water 35 °C), with the usual temperature difference across
each heat exchanger and a smallest lift below which makers do not publish higher COPs.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]

EXCHANGER_DT_K = 5.0
"""Temperature difference across the evaporator and across the condenser [K]."""
LOWEST_LIFT_K = 15.0
"""The smallest temperature lift a heat pump's published COP goes down to [K]."""
RATING_OUTDOOR_C, RATING_WATER_C = 7.0, 35.0
"""The rating point of a heat pump's nominal COP (EN 14511 A7/W35) [°C]."""
DESIGN_AIR_L_S_M2 = 1.5
"""Design supply airflow of an air handler per m² it serves [l/(s m²)] (EN 16798, offices)."""
AIR_KJ_PER_M3_K = 1.2 * 1.005
"""Heat capacity of a cubic metre of air (1.2 kg/m³, 1.005 kJ/(kg K)) [kJ/(m³ K)]."""


def carnot(heating: BoolArray, water_c: FloatArray, outdoor_c: FloatArray) -> FloatArray:
    """The Carnot COP of heating (outdoors to water) or cooling (water to outdoors) [-]."""
    sink = np.where(heating, water_c, outdoor_c) + EXCHANGER_DT_K + 273.15
    source = np.where(heating, outdoor_c, water_c) - EXCHANGER_DT_K + 273.15
    lift = np.maximum(sink - source, LOWEST_LIFT_K)
    return np.asarray(np.where(heating, sink, source) / lift, dtype=float)


def expected_cop(
    cop_nominal: float, heating: BoolArray, water_c: FloatArray, outdoor_c: FloatArray
) -> FloatArray:
    """The COP a clean heat pump of ``cop_nominal`` reaches at these temperatures [-]."""
    at_rating = carnot(np.array([True]), np.array([RATING_WATER_C]), np.array([RATING_OUTDOOR_C]))
    return np.asarray(cop_nominal / at_rating[0] * carnot(heating, water_c, outdoor_c), dtype=float)


def air_kw_per_k(area_m2: float, speed_pct: FloatArray) -> FloatArray:
    """The heat capacity flow of an air handler's supply air at ``speed_pct`` [kW/K]."""
    m3_s = DESIGN_AIR_L_S_M2 * area_m2 / 1000.0 * np.asarray(speed_pct, dtype=float) / 100.0
    return np.asarray(m3_s * AIR_KJ_PER_M3_K, dtype=float)
