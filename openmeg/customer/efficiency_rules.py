"""The rules of the efficiency diagnosis, one per kind of waste: each compares a piece of
equipment's points with what its description and schedule expect, and gives the power it
wastes in each interval [kW] with the numbers that show it.

Every rule takes the BAS points' interval series (columns ``<equipment>.<point>``, each row the
mean over the interval that starts at its time) and the hour of day of each row in local time.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import pandas as pd

from openmeg.core.building_automation import BasEquipment
from openmeg.customer.efficiency_models import air_kw_per_k, expected_cop

FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]


@dataclass(frozen=True, kw_only=True)
class Waste:
    """A rule's answer: the power wasted in each interval [kW] and its evidence."""

    kw: FloatArray
    evidence: dict[str, float]
    summary: str


def col(points: pd.DataFrame, equipment: str, name: str) -> FloatArray:
    """The series of ``<equipment>.<name>`` as floats."""
    return np.asarray(points[f"{equipment}.{name}"], dtype=float)


def scheduled(hour: FloatArray, from_h: FloatArray, to_h: FloatArray) -> BoolArray:
    """True inside the occupied hours ``from_h <= hour < to_h`` (wrapping past midnight)."""
    inside = (hour >= from_h) & (hour < to_h)
    wrapped = (hour >= from_h) | (hour < to_h)
    return np.asarray(np.where(from_h <= to_h, inside, wrapped), dtype=bool)


def fan_after_hours(points: pd.DataFrame, e: BasEquipment, hour: FloatArray, dt_h: float) -> Waste:
    """An AHU's fan running outside its occupied hours: all its power there is waste."""
    own = scheduled(hour, col(points, e.id, "occupied_from_h"), col(points, e.id, "occupied_to_h"))
    kw = col(points, e.id, "fan_kw")
    after = ~own & ((col(points, e.id, "fan_on") >= 0.5) | (kw > 0))
    hours = float(after.sum() * dt_h)
    mean_kw = float(kw[after].mean()) if after.any() else 0.0
    return Waste(
        kw=np.where(after, kw, 0.0),
        evidence={"hours_after_hours_h": hours, "mean_fan_kw": mean_kw},
        summary=f"the fan ran {hours:.1f} h outside its occupied hours at {mean_kw:.2f} kW",
    )


def lights_empty_zone(points: pd.DataFrame, e: BasEquipment, dt_h: float) -> Waste:
    """A lighting zone lit while its occupancy sensor sees nobody: all its power is waste."""
    kw = col(points, e.id, "lights_kw")
    empty_lit = (col(points, e.id, "occupied") < 0.5) & (kw > 0)
    hours = float(empty_lit.sum() * dt_h)
    level = float(col(points, e.id, "level_pct")[empty_lit].mean()) if empty_lit.any() else 0.0
    return Waste(
        kw=np.where(empty_lit, kw, 0.0),
        evidence={"hours_lit_empty_h": hours, "mean_level_pct": level},
        summary=f"lit {hours:.1f} h at {level:.0f} % with nobody in the zone",
    )


def cop_drift(
    points: pd.DataFrame, e: BasEquipment, day: npt.NDArray[np.int64], tolerance: float
) -> Waste:
    """A heat pump drawing more than its expected COP allows, on each day whose performance
    (expected over actual electric energy) falls below ``1 - tolerance``."""
    thermal, electric = col(points, e.id, "thermal_kw"), col(points, e.id, "electric_kw")
    mode = col(points, e.id, "mode")
    run = (thermal > 0) & (electric > 0) & ((mode == 2) | (mode == 3))
    exp = expected_cop(
        e.cop_nominal,
        mode == 2,
        col(points, e.id, "water_temp_c"),
        col(points, e.id, "outdoor_temp_c"),
    )
    want = np.where(run, thermal / np.where(run, exp, 1.0), 0.0)
    used = np.where(run, electric, 0.0)
    frame = pd.DataFrame({"day": day, "want": want, "used": used})
    daily = frame.groupby("day").sum()
    bad_days = daily.index[(daily["used"] > 0) & (daily["want"] < (1 - tolerance) * daily["used"])]
    bad = run & np.isin(day, bad_days)
    observed = float(thermal[bad].sum() / electric[bad].sum()) if bad.any() else 0.0
    expected = float(thermal[bad].sum() / want[bad].sum()) if bad.any() else 0.0
    loss = 1.0 - observed / expected if bad.any() else 0.0
    return Waste(
        kw=np.where(bad, used - want, 0.0),
        evidence={
            "days": float(len(bad_days)),
            "observed_cop": observed,
            "expected_cop": expected,
            "cop_loss": loss,
        },
        summary=(
            f"COP {observed:.2f} where {expected:.2f} is expected ({loss:.0%} lower) "
            f"on {len(bad_days)} day{'' if len(bad_days) == 1 else 's'}"
        ),
    )


def simultaneous(
    points: pd.DataFrame, ahu: BasEquipment, pumps: list[BasEquipment], band_k: float
) -> Waste:
    """An AHU supplying air colder than the space while the heat pumps heat it (or warmer while
    they cool): the heat pumps' electricity for the air's sensible heat is waste."""
    heat_kw, cool_kw, heat_el, cool_el = (np.zeros(len(points)) for _ in range(4))
    for p in pumps:
        mode, thermal = col(points, p.id, "mode"), col(points, p.id, "thermal_kw")
        electric = col(points, p.id, "electric_kw")
        heat_kw += np.where(mode == 2, thermal, 0.0)
        heat_el += np.where(mode == 2, electric, 0.0)
        cool_kw += np.where(mode == 3, thermal, 0.0)
        cool_el += np.where(mode == 3, electric, 0.0)
    supply, space = col(points, ahu.id, "supply_temp_c"), col(points, ahu.id, "space_temp_c")
    on = col(points, ahu.id, "fan_on") >= 0.5
    mcp = air_kw_per_k(ahu.area_m2, col(points, ahu.id, "fan_speed_pct"))
    cold = on & (heat_kw > 0) & (heat_el > 0) & (supply < space - band_k)
    warm = on & (cool_kw > 0) & (cool_el > 0) & (supply > space + band_k)
    heat_cop = np.divide(heat_kw, heat_el, out=np.ones(len(points)), where=heat_el > 0)
    cool_cop = np.divide(cool_kw, cool_el, out=np.ones(len(points)), where=cool_el > 0)
    air_kw = mcp * np.abs(space - supply)
    kw = np.where(cold, air_kw / heat_cop, np.where(warm, air_kw / cool_cop, 0.0))
    both = cold | warm
    dt = float(np.abs(space - supply)[both].mean()) if both.any() else 0.0
    return Waste(
        kw=kw,
        evidence={"intervals": float(both.sum()), "mean_supply_to_space_k": dt},
        summary=(
            f"supply air {dt:.1f} K from the space temperature against the heat pumps "
            f"in {int(both.sum())} intervals"
        ),
    )
