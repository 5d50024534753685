"""The study sections of a run's summary: monthly energy, yields and capacity factors, the CHP,
the stores, outages and voltages; what ``report.html`` shows in its tables."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from openmeg.core import en50160
from openmeg.sim.engine import Engine
from openmeg.sim.grid import kernel
from openmeg.sim.report_tables import (
    capacity_factor,
    excursions,
    level_throughput_kwh,
    monthly_energy_kwh,
    running_hours_and_starts,
)


def _r(x: float) -> float:
    return round(float(x), 6)


def device_rows(engine: Engine) -> tuple[np.ndarray, list[str]]:
    """Every device's power per step (kW, into the MEG bus positive) and its id, in the order
    of ``summary["energy_kwh"]``."""
    p, o, n = engine.plant, engine.out, engine.k
    ids = [*p.ren_ids, *p.load_ids, *p.bat_ids, *p.chp_ids, *p.fc_ids]
    rows = np.concatenate([o.ren, -o.load, o.bat, o.chp, o.fc])[:, :n]
    return rows, ids


def outage_windows(engine: Engine) -> list[tuple[Any, int, int, int]]:
    """``(outage, first step, step back on the grid, step after the window)`` of each outage
    the run reaches; the window runs from the outage's start to the resynchronising step, that
    step included (its open-transition break leaves the loads unserved for a moment)."""
    p, o, n = engine.plant, engine.out, engine.k
    index = p.index[:n]
    out = []
    for outage in p.scenario.outages:
        k0 = int(index.searchsorted(pd.Timestamp(outage.start)))
        k_end = int(index.searchsorted(pd.Timestamp(outage.end)))
        if k0 >= n or k_end == 0:
            continue
        k = k_end
        while k < n and o.mode[k] != kernel.GRID:
            k += 1
        out.append((outage, k0, k, min(k + 1, n)))
    return out


def outages(engine: Engine) -> list[dict[str, Any]]:
    """Each outage: start, end, when the MEG was back on the grid, its duration, the energy
    demanded but not served (kWh) and the loads shed (served nothing at some step)."""
    p, o = engine.plant, engine.out
    rows = []
    for outage, k0, k_back, k_stop in outage_windows(engine):
        dem, served = p.load_dem[:, k0:k_stop], o.load[:, k0:k_stop]
        shed = np.asarray(((served <= 0.0) & (dem > 0.0)).any(axis=1))
        back = p.index[k_back] if k_back < engine.k else None
        rows.append(
            {
                "start": outage.start.isoformat(),
                "end": outage.end.isoformat(),
                "back_on_grid": back.isoformat() if back is not None else None,
                "duration_h": _r((outage.end - outage.start).total_seconds() / 3600.0),
                "unserved_kwh": _r((dem - served).sum() * p.dt_h),
                "shed_loads": [d for d, s in zip(p.load_ids, shed.tolist(), strict=True) if s],
            }
        )
    return rows


def generators(engine: Engine, energy: dict[str, float]) -> dict[str, dict[str, Any]]:
    """PV, wind, CHP and fuel cells: rating, energy, capacity factor, full-load hours; PV also
    its DC rating and specific yield (kWh per kWp)."""
    p = engine.plant
    hours = engine.k * p.dt_h
    units: list[tuple[str, str, float]] = [
        (d, k, float(r)) for d, k, r in zip(p.ren_ids, p.ren_kind, p.ren_rating_kw, strict=True)
    ]
    units += [(d, "chp", float(p.chp_par[i, kernel.C_PMAX])) for i, d in enumerate(p.chp_ids)]
    units += [(d, "fuel_cell", float(p.fc_par[i, kernel.F_PMAX])) for i, d in enumerate(p.fc_ids)]
    out: dict[str, dict[str, Any]] = {}
    for d, kind, rating in units:
        e = energy[d]
        row: dict[str, Any] = {
            "kind": kind,
            "rating_kw": _r(rating),
            "energy_kwh": e,
            "capacity_factor": _r(capacity_factor(e, rating, hours)),
            "full_load_hours": _r(e / rating if rating > 0 else 0.0),
        }
        if kind == "pv":
            kwp = float(p.scenario.physics(d, "pv").dc_kwp)
            row["dc_kwp"] = kwp
            row["specific_yield_kwh_per_kwp"] = _r(e / kwp)
        out[d] = row
    return out


def chp_units(engine: Engine) -> dict[str, dict[str, float]]:
    """Each CHP's running hours, starts, electricity, heat and fuel (kWh)."""
    p, o, n = engine.plant, engine.out, engine.k
    out = {}
    for i, d in enumerate(p.chp_ids):
        hours, starts = running_hours_and_starts(o.chp[i, :n], p.dt_h)
        out[d] = {
            "running_hours": _r(hours),
            "starts": starts,
            "energy_kwh": _r(o.chp[i, :n].sum() * p.dt_h),
            "heat_kwh": _r(o.chp_heat[i, :n].sum() * p.dt_h),
            "fuel_kwh": _r(o.chp[i, :n].sum() * p.dt_h / p.chp_par[i, kernel.C_EEL]),
        }
    return out


def heat_stores(engine: Engine) -> dict[str, dict[str, float]]:
    """Each heat store: capacity, level range, what its level rose and fell by, equivalent full
    cycles, and its heat flows (from the CHPs, the boiler, to the demand, dumped), kWh."""
    p, o, n = engine.plant, engine.out, engine.k
    out = {}
    for h, d in enumerate(p.hs_ids):
        cap = float(p.hs_par[h, kernel.H_CAP])
        level = o.hs[h, :n]
        charged, discharged = level_throughput_kwh(level, float(p.hs_init[h]))
        chp_in = sum(
            float(o.chp_heat[c, :n].sum())
            for c in range(len(p.chp_ids))
            if int(p.chp_par[c, kernel.C_HS]) == h
        )
        out[d] = {
            "capacity_kwh": _r(cap),
            "level_min_kwh": _r(level.min()) if n else 0.0,
            "level_max_kwh": _r(level.max()) if n else 0.0,
            "level_mean_kwh": _r(level.mean()) if n else 0.0,
            "charged_kwh": _r(charged),
            "discharged_kwh": _r(discharged),
            "equivalent_full_cycles": _r(charged / cap),
            "chp_heat_kwh": _r(chp_in * p.dt_h),
            "boiler_kwh": _r(o.boiler[h, :n].sum() * p.dt_h),
            "demand_kwh": _r(p.heat_dem[h, :n].sum() * p.dt_h),
            "dumped_kwh": _r(o.heat_dumped[h, :n].sum() * p.dt_h),
        }
    return out


def batteries(engine: Engine) -> dict[str, dict[str, float]]:
    """Each battery: capacity, state-of-charge range, charge and discharge (kWh), cycles."""
    p, o, n = engine.plant, engine.out, engine.k
    out = {}
    for i, d in enumerate(p.bat_ids):
        cap = float(p.bat_par[i, kernel.B_CAP])
        charge = float(np.clip(-o.bat[i, :n], 0, None).sum()) * p.dt_h
        out[d] = {
            "capacity_kwh": _r(cap),
            "soc_min": _r(o.soc[i, :n].min()) if n else 0.0,
            "soc_max": _r(o.soc[i, :n].max()) if n else 0.0,
            "charge_kwh": _r(charge),
            "discharge_kwh": _r(float(np.clip(o.bat[i, :n], 0, None).sum()) * p.dt_h),
            "equivalent_full_cycles": _r(charge / cap),
        }
    return out


def bus_voltages(engine: Engine) -> tuple[pd.DatetimeIndex, np.ndarray]:
    """The instants of the power flows and every bus's voltage there, ``[runs, buses]`` p.u."""
    log = engine.pf_log
    index = pd.DatetimeIndex(engine.plant.index[np.asarray(log.step, dtype=int)])
    vm = np.vstack(log.vm_pu) if log.vm_pu else np.zeros((0, len(engine.bus_names)))
    return index, vm


def voltages(engine: Engine) -> dict[str, Any]:
    """The voltage profile against EN 50160: extremes with bus and instant, every excursion
    outside Un ± 10 % (with whether its week breaks the standard), and every failing week."""
    index, vm = bus_voltages(engine)
    buses = engine.bus_names
    interval = engine.plant.scenario.simulation.powerflow_interval_min
    if vm.shape[0] == 0:
        return {"interval_min": interval, "runs": 0, "violations": [], "failing_weeks": []}
    lo, hi = np.unravel_index(np.argmin(vm), vm.shape), np.unravel_index(np.argmax(vm), vm.shape)
    local = index.tz_convert(engine.site.site.timezone)
    weeks = en50160.assess(local, vm, buses)  # weeks from Monday 00:00 local time
    failing = {(w.bus, w.week): w for w in en50160.violations(weeks)}
    rows = []
    for x in excursions(local, vm, buses):
        week = x.start.normalize() - pd.Timedelta(days=x.start.dayofweek)
        bad = failing.get((x.bus, week))
        rows.append(
            {
                "bus": x.bus,
                "start": x.start.tz_convert("UTC").isoformat(),
                "end": x.end.tz_convert("UTC").isoformat(),
                "power_flows": x.samples,
                "extreme_pu": _r(x.extreme_pu),
                "band": en50160.BAND_NAMES[x.band],
                "week_breaks_en50160": bad is not None,
            }
        )
    return {
        "interval_min": interval,
        "runs": int(vm.shape[0]),
        "buses": len(buses),
        "min_pu": _r(vm[lo]),
        "min_bus": buses[int(lo[1])],
        "min_at": index[int(lo[0])].isoformat(),
        "max_pu": _r(vm[hi]),
        "max_bus": buses[int(hi[1])],
        "max_at": index[int(hi[0])].isoformat(),
        "violations": rows,
        "failing_weeks": [
            {"bus": w.bus, "week": w.week.isoformat(), "why": w.why} for w in failing.values()
        ],
    }


def study(engine: Engine, energy: dict[str, float]) -> dict[str, Any]:
    """The study sections of ``summary.json``."""
    p = engine.plant
    rows, ids = device_rows(engine)
    tz = engine.site.site.timezone
    index = p.index[: engine.k]
    grid = engine.out.grid[: engine.k]
    exchange = np.vstack([np.clip(grid, 0, None), np.clip(-grid, 0, None)])
    return {
        "timezone": tz,
        "monthly_energy_kwh": monthly_energy_kwh(index, tz, rows, ids, p.dt_h),
        "monthly_grid_kwh": monthly_energy_kwh(
            index, tz, exchange, ["import_kwh", "export_kwh"], p.dt_h
        ),
        "generators": generators(engine, energy),
        "chp": chp_units(engine),
        "heat_stores": heat_stores(engine),
        "batteries": batteries(engine),
        "outages": outages(engine),
        "voltage": voltages(engine),
    }
