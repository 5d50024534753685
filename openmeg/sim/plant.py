"""Build the simulated plant of a site: exogenous series and parameter tables for the step loop."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import numpy as np
import pandas as pd
import pvlib

from openmeg.core.scenario import Scenario
from openmeg.core.scenario_file import simulated_scenario
from openmeg.core.site import Site
from openmeg.der.wind_curves import library_curve
from openmeg.sim.grid import kernel
from openmeg.sim.physics import flexible, pv, wind
from openmeg.sim.physics.pv import FloatArray
from openmeg.sim.profiles import electric_load_kw, heat_load_kw, standard_offset_h
from openmeg.sim.weather import WIND_MEASURED_AT_M, Weather, load_weather

IntArray = np.ndarray


@dataclass(kw_only=True)
class Plant:
    """Everything the step loop needs, as arrays, with the device ids of each row."""

    index: pd.DatetimeIndex
    step_s: float
    scenario: Scenario
    weather: Weather
    ren_ids: list[str]
    ren_kind: list[str]
    ren_avail: FloatArray
    ren_group: IntArray
    ren_bus: IntArray
    ren_rating_kw: FloatArray
    load_ids: list[str]
    load_kind: list[str]
    load_dem: FloatArray
    load_prio: FloatArray
    load_group: IntArray
    load_bus: IntArray
    load_tan_phi: FloatArray
    heat_ids: list[str]
    heat_dem: FloatArray
    hs_ids: list[str]
    hs_par: FloatArray
    hs_init: FloatArray
    bat_ids: list[str]
    bat_par: FloatArray
    bat_group: IntArray
    bat_bus: IntArray
    bat_init: FloatArray
    chp_ids: list[str]
    chp_par: FloatArray
    chp_bus: IntArray
    chp_fuel_co2: FloatArray
    fc_ids: list[str]
    fc_par: FloatArray
    fc_bus: IntArray
    fc_fuel_co2: FloatArray
    fc_eta: FloatArray
    boiler_eta: FloatArray
    boiler_co2: FloatArray
    grid_up: IntArray
    grid_v_pu: FloatArray
    grid_angle_deg: FloatArray
    groups: list[str] = field(default_factory=list)

    @property
    def n_steps(self) -> int:
        return len(self.index)

    @property
    def dt_h(self) -> float:
        return self.step_s / 3600.0


@dataclass
class _Rows:
    """Rows of one device family being collected: id, series and per-row attributes."""

    ids: list[str] = field(default_factory=list)
    kinds: list[str] = field(default_factory=list)
    rows: list[FloatArray] = field(default_factory=list)
    group: list[int] = field(default_factory=list)
    bus: list[int] = field(default_factory=list)
    prio: list[float] = field(default_factory=list)
    tan_phi: list[float] = field(default_factory=list)
    rating: list[float] = field(default_factory=list)

    def add(
        self,
        device_id: str,
        row: FloatArray,
        *,
        kind: str,
        group: int,
        bus: int,
        prio: float = np.inf,
        tan_phi: float = 0.0,
        rating: float = 0.0,
    ) -> None:
        self.ids.append(device_id)
        self.kinds.append(kind)
        self.rows.append(row)
        self.group.append(group)
        self.bus.append(bus)
        self.prio.append(prio)
        self.tan_phi.append(tan_phi)
        self.rating.append(rating)

    def matrix(self, n_steps: int) -> FloatArray:
        return np.vstack(self.rows) if self.rows else np.zeros((0, n_steps))


def _table(
    scenario: Scenario,
    devices: list[Any],
    columns: tuple[str, ...],
    **convert: Callable[[Any], float],
) -> FloatArray:
    """A parameter table: one row per device, one column per attribute named in ``columns``,
    taken from the device's physics in the scenario or else from its ratings."""

    def value(d: Any, c: str) -> float:
        physics = scenario.physics(d.id, d.kind)
        v = getattr(physics, c) if c in type(physics).model_fields else getattr(d, c)
        return float(convert[c](v) if c in convert else v)

    rows = [[value(d, c) for c in columns] for d in devices]
    return np.array(rows, dtype=float).reshape(-1, len(columns))


def outage_mask(scenario: Scenario, index: pd.DatetimeIndex) -> IntArray:
    """1 where the utility grid is up, 0 during a scheduled outage."""
    up = np.ones(len(index), dtype=np.uint8)
    for o in scenario.outages:
        up[(index >= pd.Timestamp(o.start)) & (index < pd.Timestamp(o.end))] = 0
    return up


def utility_return(scenario: Scenario, index: pd.DatetimeIndex) -> tuple[FloatArray, FloatArray]:
    """The utility's voltage (p.u.) and phase angle against the island (deg) at each step:
    after an outage it comes back at ``return_voltage_pu`` for ``recovery_min`` and at
    ``return_phase_deg``."""
    v = np.ones(len(index))
    angle = np.zeros(len(index))
    for o in scenario.outages:
        end = pd.Timestamp(o.end)
        after = index >= end
        angle[after] = o.return_phase_deg
        v[after & (index < end + pd.Timedelta(minutes=o.recovery_min))] = o.return_voltage_pu
    return v, angle


def build_plant(site: Site, net: Any, start: datetime, n_steps: int, step_s: float) -> Plant:
    """Every exogenous series of ``site`` at ``n_steps`` steps of ``step_s`` from ``start``,
    from its scenario (``SiteFileError`` when the site has none, or it lacks a device)."""
    scenario = simulated_scenario(site)

    def physics(d: Any) -> Any:
        return scenario.physics(d.id, d.kind)

    index = pd.date_range(
        pd.Timestamp(start).tz_convert("UTC"), periods=n_steps, freq=pd.Timedelta(seconds=step_s)
    )
    weather = load_weather(scenario.weather, index)
    tz = site.site.timezone
    bus_of = {str(name): int(i) for i, name in zip(net.bus.index, net.bus["name"], strict=True)}
    groups = [c.id for c in site.customers]
    group_of = {c: i for i, c in enumerate(groups)}

    def group(owner: str) -> int:
        return group_of.get(owner, -1) if owner != "community" else -1

    # renewables
    sun = pvlib.solarposition.ephemeris(index, site.site.latitude, site.site.longitude)
    ren = _Rows()
    for d in site.devices_of("pv"):
        ph = physics(d)
        poa = pv.plane_of_array_w_m2(
            weather.frame(), sun, tilt_deg=ph.tilt_deg, azimuth_deg=ph.azimuth_deg
        )
        t_cell = pv.cell_temperature_c(poa, weather.temp_air_c, weather.wind_m_s)
        p = pv.pv_ac_kw(
            poa,
            t_cell,
            dc_kwp=ph.dc_kwp,
            inverter_kw=d.inverter_kw,
            system_losses=ph.system_losses,
            gamma_pdc_per_c=ph.gamma_pdc_per_c,
        )
        ren.add(d.id, p, kind="pv", rating=d.inverter_kw, group=group(d.owner), bus=bus_of[d.bus])
    for d in site.devices_of("wind"):
        speeds, powers, nominal = library_curve(d.turbine_type)
        scale = (d.rated_kw / nominal) if d.rated_kw else 1.0
        v_hub = wind.hub_wind_speed_m_s(
            weather.wind_m_s,
            measured_at_m=WIND_MEASURED_AT_M,
            hub_height_m=physics(d).hub_height_m,
            roughness_length_m=physics(d).roughness_length_m,
        )
        p = wind.power_from_curve_kw(v_hub, np.array(speeds), np.array(powers), scale=scale)
        ren.add(
            d.id,
            p,
            kind="wind",
            rating=max(powers) * scale,
            group=group(d.owner),
            bus=bus_of[d.bus],
        )

    # electric loads: plain, EV chargers, shiftable
    dt_h = step_s / 3600.0
    offset = standard_offset_h(tz, index[0].year)
    local_h = np.asarray((index - index[0].normalize()).total_seconds()) / 3600.0 + offset
    day_of_run = np.floor(local_h / 24.0).astype(np.int64)
    local_hour = np.mod(local_h, 24.0)
    loads = _Rows()
    for d in site.devices_of("load"):
        ph = physics(d)
        p = electric_load_kw(ph.profile, ph.annual_kwh, index, timezone=tz, key=d.id)
        loads.add(
            d.id,
            p,
            kind="load",
            prio=float(d.shed_priority) if d.sheddable else np.inf,
            tan_phi=float(np.tan(np.arccos(ph.power_factor))),
            group=group(d.owner),
            bus=bus_of[d.bus],
        )
    base_demand = np.sum(loads.rows, axis=0) if loads.rows else np.zeros(n_steps)
    net_forecast = base_demand - (np.sum(ren.rows, axis=0) if ren.rows else 0.0)
    for d in site.devices_of("ev_charger"):
        ph = physics(d)
        sessions = flexible.ev_sessions(
            n_steps,
            dt_h,
            float(local_hour[0]),
            sessions_per_day=ph.sessions_per_day,
            arrival_h_mean=ph.arrival_h_mean,
            dwell_h_mean=ph.dwell_h_mean,
            energy_kwh_mean=ph.energy_kwh_mean,
            seed=ph.seed,
        )
        p = flexible.ev_demand_kw(sessions, n_steps, dt_h, d.p_max_kw)
        loads.add(
            d.id,
            p,
            kind="ev_charger",
            prio=np.inf if d.critical else float(d.shed_priority),
            group=group(d.owner),
            bus=bus_of[d.bus],
        )
    for d in site.devices_of("shiftable_load"):
        ph = physics(d)
        p = flexible.shiftable_demand_kw(
            local_hour,
            day_of_run,
            p_kw=d.p_kw,
            run_steps=max(1, round(ph.run_min * 60.0 / step_s)),
            window_start_h=ph.window_start_h,
            window_end_h=ph.window_end_h,
            cost=net_forecast,
        )
        loads.add(
            d.id,
            p,
            kind="shiftable_load",
            prio=np.inf if d.critical else float(d.shed_priority),
            group=group(d.owner),
            bus=bus_of[d.bus],
        )

    # heat
    hs = site.devices_of("heat_storage")
    hs_ids = [h.id for h in hs]
    hourly = pd.date_range(
        pd.Timestamp(year=index[0].year, month=1, day=1, tz="UTC"), periods=8760, freq="h"
    )
    temp_hourly = load_weather(scenario.weather, hourly).temp_air_c
    heat_dem = np.zeros((len(hs), n_steps))
    heat_ids = []
    for d in site.devices_of("heat_load"):
        heat_ids.append(d.id)
        ph = physics(d)
        heat_dem[hs_ids.index(d.heat_storage)] += heat_load_kw(
            ph.profile, ph.annual_kwh, ph.building_class, temp_hourly, index, timezone=tz
        )

    grid_v, grid_angle = utility_return(scenario, index)
    bats = site.devices_of("battery")
    chps = site.devices_of("chp")
    fcs = site.devices_of("fuel_cell")
    return Plant(
        index=index,
        step_s=step_s,
        scenario=scenario,
        weather=weather,
        ren_ids=ren.ids,
        ren_kind=ren.kinds,
        ren_avail=ren.matrix(n_steps),
        ren_group=np.array(ren.group, dtype=np.int64),
        ren_bus=np.array(ren.bus, dtype=np.int64),
        ren_rating_kw=np.array(ren.rating, dtype=float),
        load_ids=loads.ids,
        load_kind=loads.kinds,
        load_dem=loads.matrix(n_steps),
        load_prio=np.array(loads.prio, dtype=float),
        load_group=np.array(loads.group, dtype=np.int64),
        load_bus=np.array(loads.bus, dtype=np.int64),
        load_tan_phi=np.array(loads.tan_phi, dtype=float),
        heat_ids=heat_ids,
        heat_dem=heat_dem,
        hs_ids=hs_ids,
        hs_par=_table(scenario, hs, kernel.HEAT_STORAGE_COLUMNS),
        hs_init=np.array([physics(h).soc_initial * h.capacity_kwh for h in hs], dtype=float),
        bat_ids=[b.id for b in bats],
        bat_par=_table(scenario, bats, kernel.BATTERY_COLUMNS),
        bat_group=np.array([group(b.owner) for b in bats], dtype=np.int64),
        bat_bus=np.array([bus_of[b.bus] for b in bats], dtype=np.int64),
        bat_init=np.array([physics(b).soc_initial for b in bats], dtype=float),
        chp_ids=[c.id for c in chps],
        chp_par=_table(scenario, chps, kernel.CHP_COLUMNS, heat_storage=hs_ids.index),
        chp_bus=np.array([bus_of[c.bus] for c in chps], dtype=np.int64),
        chp_fuel_co2=np.array([c.co2_kg_per_kwh_fuel for c in chps], dtype=float),
        fc_ids=[f.id for f in fcs],
        fc_par=_table(scenario, fcs, kernel.FUEL_CELL_COLUMNS),
        fc_bus=np.array([bus_of[f.bus] for f in fcs], dtype=np.int64),
        fc_fuel_co2=np.array([f.co2_kg_per_kwh_fuel for f in fcs], dtype=float),
        fc_eta=np.array([f.eta_el for f in fcs], dtype=float),
        boiler_eta=np.array([h.boiler_eta for h in hs], dtype=float),
        boiler_co2=np.array([h.boiler_co2_kg_per_kwh_fuel for h in hs], dtype=float),
        grid_up=outage_mask(scenario, index),
        grid_v_pu=grid_v,
        grid_angle_deg=grid_angle,
        groups=groups,
    )
