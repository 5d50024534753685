"""Every point of a BAS over a time index, from its settings, the outdoor temperature, the
faults and the events: the one evaluation both the stepped plant and the offline run use.

Powers in kW, temperatures in °C; ``waste_kw`` is the simulator's truth of what each fault
costs its own equipment (its electric power minus what it would draw without the fault).
"""

from __future__ import annotations

import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

import numpy as np
import numpy.typing as npt
import pandas as pd

from openmeg.core.bas_scenario import BasEvent, BasFault
from openmeg.core.building_automation import BasSystem
from openmeg.sim.physics import building_model as m

FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]


@dataclass(frozen=True, kw_only=True)
class Evaluation:
    """The points (``<equipment>.<point>``), each fault's waste [kW] and each AHU's running."""

    points: dict[str, FloatArray]
    waste_kw: tuple[FloatArray, ...]
    running: dict[str, BoolArray]


def _active(t: pd.DatetimeIndex, start: datetime, end: datetime | None) -> BoolArray:
    on = np.asarray(t >= pd.Timestamp(start))
    return on if end is None else on & np.asarray(t < pd.Timestamp(end))


def _area(bas: BasSystem) -> float:
    for kind in ("ahu", "lighting_zone"):
        area = sum(e.area_m2 for e in bas.equipment if e.kind == kind)
        if area > 0:
            return area
    return 1000.0


def _ramp(t: pd.DatetimeIndex, fault: BasFault) -> FloatArray:
    if fault.ramp_days <= 0:
        return np.ones(len(t))
    days = np.asarray((t - pd.Timestamp(fault.start)).total_seconds(), dtype=float) / 86400.0
    return np.clip(days / fault.ramp_days, 0.0, 1.0)


def evaluate(
    bas: BasSystem,
    settings: Mapping[str, float],
    *,
    t_utc: pd.DatetimeIndex,
    outdoor_c: FloatArray,
    run_hours: Mapping[str, FloatArray],
    timezone: str,
    faults: Sequence[BasFault] = (),
    events: Sequence[BasEvent] = (),
) -> Evaluation:
    """Every point of ``bas`` at each time of ``t_utc`` (the start of an interval).

    ``settings`` holds every writable point's value (NaN for ``fan_on``, ``mode`` and ``armed``
    leaves them automatic) and each heat pump's ``heat_water_c`` / ``cool_water_c``;
    ``run_hours`` each AHU's filter running hours at each time.
    """
    n = len(t_utc)
    local = t_utc.tz_convert(timezone)
    hour = np.asarray(local.hour + local.minute / 60.0 + local.second / 3600.0, dtype=float)
    slot = np.asarray(t_utc.asi8 // (m.OCCUPANCY_SLOT_S * 1_000_000_000), dtype=np.int64)
    out: dict[str, FloatArray] = {}
    waste = [np.zeros(n) for _ in faults]
    fault_on = [_active(t_utc, f.start, f.end) for f in faults]

    def s(eq: str, name: str) -> float:
        return float(settings[f"{eq}.{name}"])

    ahus = [e for e in bas.equipment if e.kind == "ahu"]
    sched_from, sched_to = (
        (s(ahus[0].id, "occupied_from_h"), s(ahus[0].id, "occupied_to_h")) if ahus else (7.0, 19.0)
    )
    occupied = m.scheduled(hour, sched_from, sched_to)
    area = _area(bas)

    # lighting zones: occupancy by slot, level by occupancy
    lights_total = np.zeros(n)
    for e in bas.equipment:
        if e.kind != "lighting_zone":
            continue
        u = m.uniform_hash(zlib.crc32(e.id.encode()), slot)
        present = u < np.where(occupied, m.P_OCCUPIED_IN_HOURS, m.P_OCCUPIED_AFTER_HOURS)
        level = np.where(present, s(e.id, "level_pct"), 0.0)
        for i, f in enumerate(faults):
            if f.equipment == e.id and f.kind == "lights_empty_zone":
                left_on = fault_on[i] & ~present
                level = np.where(left_on, f.magnitude * s(e.id, "level_pct"), level)
                waste[i] = np.where(left_on, e.rated_kw * level / 100.0, 0.0)
        kw = e.rated_kw * level / 100.0
        lights_total += kw
        out[f"{e.id}.occupied"] = present.astype(float)
        out[f"{e.id}.level_pct"] = level
        out[f"{e.id}.lights_kw"] = kw
        out[f"{e.id}.scene"] = np.full(n, s(e.id, "scene"))

    # air handlers: fan on the schedule, conditioned supply air in occupied mode
    air_kw_k = np.zeros(n)
    air_supply = np.zeros(n)
    running: dict[str, BoolArray] = {}
    ahu_mode: dict[str, BoolArray] = {}
    for e in ahus:
        own = m.scheduled(hour, s(e.id, "occupied_from_h"), s(e.id, "occupied_to_h"))
        hold = s(e.id, "fan_on")
        on = own if np.isnan(hold) else np.full(n, hold >= 0.5)
        speed = np.where(on, s(e.id, "fan_speed_pct") / 100.0, 0.0)
        for i, f in enumerate(faults):
            if f.equipment == e.id and f.kind == "fan_after_hours" and np.isnan(hold):
                after = fault_on[i] & ~own
                speed = np.where(after, f.magnitude * s(e.id, "fan_speed_pct") / 100.0, speed)
                on = on | after
        loading = m.filter_loading(run_hours[e.id])
        kw = np.where(on, m.fan_kw(e.rated_kw, speed, loading), 0.0)
        for i, f in enumerate(faults):
            if f.equipment == e.id and f.kind == "fan_after_hours" and np.isnan(hold):
                waste[i] = np.where(fault_on[i] & ~own, kw, 0.0)
        conditioning = on & own
        share = e.area_m2 if e.area_m2 > 0 else area / len(ahus)
        mcp = np.where(conditioning, m.AIR_KW_PER_K_M2 * share * speed, 0.0)
        air_kw_k += mcp
        air_supply += mcp * s(e.id, "supply_temp_setpoint_c")
        running[e.id] = np.asarray(on)
        ahu_mode[e.id] = np.asarray(conditioning)
        out[f"{e.id}.fan_on"] = on.astype(float)
        out[f"{e.id}.fan_speed_pct"] = np.full(n, s(e.id, "fan_speed_pct"))
        out[f"{e.id}.supply_temp_setpoint_c"] = np.full(n, s(e.id, "supply_temp_setpoint_c"))
        out[f"{e.id}.filter_dp_pa"] = np.where(on, m.filter_dp_pa(speed, loading), 0.0)
        out[f"{e.id}.fan_kw"] = kw
        for name in ("space_temp_setpoint_c", "occupied_from_h", "occupied_to_h"):
            out[f"{e.id}.{name}"] = np.full(n, s(e.id, name))

    setpoint = float(np.mean([s(e.id, "space_temp_setpoint_c") for e in ahus])) if ahus else 21.0
    low = np.where(occupied, setpoint - m.BAND_K, m.UNOCCUPIED_BAND_C[0])
    high = np.where(occupied, setpoint + m.BAND_K, m.UNOCCUPIED_BAND_C[1])
    gains = (
        area * np.where(occupied, m.GAINS_OCCUPIED_KW_M2, m.GAINS_UNOCCUPIED_KW_M2) + lights_total
    )
    supply_mix = np.divide(air_supply, air_kw_k, out=np.zeros(n), where=air_kw_k > 0)

    # heat pumps: capacities at their COPs, the zone balance, then each one's share
    hps = [e for e in bas.equipment if e.kind == "heat_pump"]
    heat_cap, cool_cap = np.zeros(n), np.zeros(n)
    cops: dict[str, tuple[FloatArray, ...]] = {}
    for e in hps:
        eta = m.carnot_fraction(e.cop_nominal)
        hot_w, cold_w = s(e.id, "heat_water_c"), s(e.id, "cool_water_c")
        cop_h = eta * m.carnot_cop(np.ones(n, bool), np.full(n, hot_w), outdoor_c)
        cop_c = eta * m.carnot_cop(np.zeros(n, bool), np.full(n, cold_w), outdoor_c)
        factor = np.ones(n)
        for i, f in enumerate(faults):
            if f.equipment == e.id and f.kind == "cop_drift":
                factor = factor * np.where(fault_on[i], 1.0 - f.magnitude * _ramp(t_utc, f), 1.0)
        hold = s(e.id, "mode")
        may_heat = 1.0 if np.isnan(hold) or hold == 2 else 0.0
        may_cool = 1.0 if np.isnan(hold) or hold == 3 else 0.0
        cap_h = may_heat * e.rated_kw * cop_h * factor
        cap_c = may_cool * e.rated_kw * cop_c * factor
        heat_cap += cap_h
        cool_cap += cap_c
        cops[e.id] = (cop_h, cop_c, factor, cap_h, cap_c)

    zone, q = m.zone_temperature(
        outdoor_c=outdoor_c,
        gains_kw=gains,
        ua_kw_k=m.UA_KW_PER_K_M2 * area,
        air_kw_k=air_kw_k,
        supply_c=supply_mix,
        low_c=low,
        high_c=high,
        heat_max_kw=heat_cap,
        cool_max_kw=cool_cap,
    )
    heating, cooling = q > 1e-9, q < -1e-9
    for e in hps:
        cop_h, cop_c, factor, cap_h, cap_c = cops[e.id]
        part_h = np.divide(cap_h, heat_cap, out=np.zeros(n), where=heat_cap > 0)
        part_c = np.divide(cap_c, cool_cap, out=np.zeros(n), where=cool_cap > 0)
        thermal = np.where(heating, q * part_h, np.where(cooling, -q * part_c, 0.0))
        clean = np.where(heating, cop_h, cop_c)
        cop = clean * factor
        run = thermal > 0
        electric = np.divide(thermal, cop, out=np.zeros(n), where=run)
        for i, f in enumerate(faults):
            if f.equipment == e.id and f.kind == "cop_drift":
                waste[i] = electric - np.divide(thermal, clean, out=np.zeros(n), where=run)
        water = np.where(heating, s(e.id, "heat_water_c"), s(e.id, "cool_water_c"))
        out[f"{e.id}.mode"] = np.where(run & heating, 2.0, np.where(run & cooling, 3.0, 1.0))
        out[f"{e.id}.water_setpoint_c"] = np.where(
            cooling, s(e.id, "cool_water_c"), s(e.id, "heat_water_c")
        )
        out[f"{e.id}.water_temp_c"] = np.where(run, water, zone)
        out[f"{e.id}.electric_kw"] = electric
        out[f"{e.id}.thermal_kw"] = thermal
        out[f"{e.id}.cop"] = np.where(run, cop, 0.0)
        out[f"{e.id}.outdoor_temp_c"] = np.asarray(outdoor_c, dtype=float)

    for e in ahus:
        out[f"{e.id}.space_temp_c"] = zone
        out[f"{e.id}.supply_temp_c"] = np.where(
            ahu_mode[e.id], s(e.id, "supply_temp_setpoint_c"), zone
        )

    # fire and security status: quiet unless an event raises them
    for e in bas.equipment:
        if e.kind not in ("fire_alarm", "security"):
            continue
        names = ("alarm", "trouble") if e.kind == "fire_alarm" else ("intrusion",)
        for name in names:
            raised = np.zeros(n, dtype=bool)
            for ev in events:
                if ev.equipment == e.id and ev.point == name:
                    raised |= _active(t_utc, ev.start, ev.end)
            out[f"{e.id}.{name}"] = raised.astype(float)
        if e.kind == "security":
            hold = s(e.id, "armed")
            out[f"{e.id}.armed"] = (~occupied).astype(float) if np.isnan(hold) else np.full(n, hold)
    return Evaluation(points=out, waste_kw=tuple(waste), running=running)
