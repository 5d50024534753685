"""The equations of a building's BAS equipment, vectorised over time.

Powers in kW, energies in kWh, temperatures in °C, hours in local time. The building is one
thermal zone in quasi-steady state: the heat pumps hold its temperature inside a comfort band
(occupied: the space setpoint ±1 K; unoccupied: 16..28 °C) against the envelope's loss
``UA (T - T_out)``, the internal gains and the air the AHUs supply; between the band's edges the
zone floats at its free temperature.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]

UA_KW_PER_K_M2 = 1.5e-3
"""Envelope and infiltration conductance per m² of floor area [kW/(K m²)]."""
GAINS_OCCUPIED_KW_M2 = 8.0e-3
"""Internal gains of people and plug loads per m², occupied [kW/m²]."""
GAINS_UNOCCUPIED_KW_M2 = 1.0e-3
"""Internal gains per m² outside the occupied hours [kW/m²]."""
AIR_KW_PER_K_M2 = 1.5e-3 * 1.2 * 1.005
"""Heat capacity flow of the design supply air (1.5 l/s per m² of air at 1.2 kg/m³ and
1.005 kJ/(kg K)) per m² served [kW/(K m²)]; it scales with fan speed."""
BAND_K = 1.0
"""Half width of the occupied comfort band around the space setpoint [K]."""
UNOCCUPIED_BAND_C = (16.0, 28.0)
"""The zone's temperature band outside the occupied hours [°C]."""
FILTER_DP_CLEAN_PA = 120.0
"""A clean filter's pressure drop at full airflow [Pa]."""
FILTER_LOADING_H = 2000.0
"""Running hours for a filter's pressure drop to double [h] (it stops rising there)."""
FILTER_SHARE = 0.25
"""The clean filter's share of the fan's design pressure."""
APPROACH_K = 5.0
"""Temperature difference across each heat exchanger of a heat pump [K]."""
MIN_LIFT_K = 15.0
"""The smallest lift the Carnot COP is taken at (low-lift COPs stay plausible) [K]."""
RATING_WATER_C, RATING_OUTDOOR_C = 35.0, 7.0
"""The rating point of ``cop_nominal`` (EN 14511 heating, A7/W35) [°C]."""
KELVIN = 273.15
SCENE_LEVEL_PCT = (0.0, 40.0, 80.0, 100.0)
"""The lighting level of each scene (off, dimmed, normal, full) [%]."""
OCCUPANCY_SLOT_S = 900
"""A lighting zone's occupancy holds for a quarter hour [s]."""
P_OCCUPIED_IN_HOURS, P_OCCUPIED_AFTER_HOURS = 0.8, 0.05
"""Probability that a zone is occupied in a slot, inside and outside the occupied hours."""


def scheduled(hour_h: FloatArray, from_h: float, to_h: float) -> npt.NDArray[np.bool_]:
    """True inside the occupied hours ``from_h <= hour < to_h`` (wrapping past midnight)."""
    if from_h <= to_h:
        return (hour_h >= from_h) & (hour_h < to_h)
    return (hour_h >= from_h) | (hour_h < to_h)


def fan_kw(rated_kw: float, speed: FloatArray, loading: FloatArray) -> FloatArray:
    """Fan power [kW]: the affinity law (∝ speed³, speed a fraction 0..1) with the filter's
    extra pressure drop (``loading`` 0..1 doubles the filter's share of the pressure)."""
    return np.asarray(rated_kw * speed**3 * (1.0 + FILTER_SHARE * loading), dtype=float)


def filter_dp_pa(speed: FloatArray, loading: FloatArray) -> FloatArray:
    """The filter's pressure drop [Pa] at ``speed`` (fraction) and ``loading`` (0..1)."""
    return np.asarray(FILTER_DP_CLEAN_PA * speed**2 * (1.0 + loading), dtype=float)


def filter_loading(run_hours: FloatArray) -> FloatArray:
    """How far a filter has loaded after ``run_hours`` of running (0 clean .. 1) [-]."""
    return np.minimum(np.asarray(run_hours, dtype=float) / FILTER_LOADING_H, 1.0)


def carnot_cop(
    heating: npt.NDArray[np.bool_], water_c: FloatArray, outdoor_c: FloatArray
) -> FloatArray:
    """The Carnot COP between the water loop and outdoors, with ``APPROACH_K`` at each side
    and a lift of at least ``MIN_LIFT_K``;
    heating lifts from outdoors to the water, cooling from the water to outdoors [-]."""
    hot = np.where(heating, water_c, outdoor_c) + APPROACH_K + KELVIN
    cold = np.where(heating, outdoor_c, water_c) - APPROACH_K + KELVIN
    lift = np.maximum(hot - cold, MIN_LIFT_K)
    return np.asarray(np.where(heating, hot, cold) / lift, dtype=float)


def carnot_fraction(cop_nominal: float) -> float:
    """The fraction of Carnot a heat pump reaches, from its COP at the rating point [-]."""
    rating = carnot_cop(np.array([True]), np.array([RATING_WATER_C]), np.array([RATING_OUTDOOR_C]))
    return float(cop_nominal / rating[0])


def zone_temperature(
    *,
    outdoor_c: FloatArray,
    gains_kw: FloatArray,
    ua_kw_k: float,
    air_kw_k: FloatArray,
    supply_c: FloatArray,
    low_c: FloatArray,
    high_c: FloatArray,
    heat_max_kw: FloatArray,
    cool_max_kw: FloatArray,
) -> tuple[FloatArray, FloatArray]:
    """The zone's temperature [°C] and the heat pumps' heat into it [kW, cooling negative].

    The zone balance ``q + gains + air (T_supply - T) = UA (T - T_out)`` holds at the band's
    edge the heat pumps hold (``q`` limited to ``heat_max_kw`` / ``-cool_max_kw``) or, with
    ``q = 0``, at the free temperature inside the band.
    """
    k = ua_kw_k + air_kw_k
    base = ua_kw_k * outdoor_c + gains_kw + air_kw_k * supply_c
    free = base / k
    q = np.where(free < low_c, k * low_c - base, np.where(free > high_c, k * high_c - base, 0.0))
    q = np.clip(q, -cool_max_kw, heat_max_kw)
    return np.asarray((base + q) / k, dtype=float), np.asarray(q, dtype=float)


def uniform_hash(seed: int, slot: npt.NDArray[np.int64]) -> FloatArray:
    """A deterministic uniform number in [0, 1) for each ``slot`` (splitmix64 of seed and slot)."""
    with np.errstate(over="ignore"):
        z = np.asarray(slot, dtype=np.uint64) * np.uint64(0x9E3779B97F4A7C15) + np.uint64(seed)
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        z = z ^ (z >> np.uint64(31))
    return np.asarray((z >> np.uint64(11)).astype(np.float64) / float(1 << 53), dtype=float)
