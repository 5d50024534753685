"""Figures of a simulation run: energy per device, exchange with the grid, balance check."""

from __future__ import annotations

from typing import Any

import numpy as np

from openmeg.sim.engine import Engine
from openmeg.sim.grid import kernel
from openmeg.sim.metering import MeterMap
from openmeg.sim.physics.meters import step_energies_kwh
from openmeg.sim.physics.pv import FloatArray
from openmeg.sim.report_study import outages, study


def balance_residual_kw(engine: Engine) -> FloatArray:
    """Per step: generation + import + discharge - served - export - charge - losses - spill."""
    o = engine.out
    gen = o.ren.sum(axis=0) + o.chp.sum(axis=0) + o.fc.sum(axis=0)
    imp = np.clip(o.grid, 0, None)
    exp = np.clip(-o.grid, 0, None)
    dis = np.clip(o.bat, 0, None).sum(axis=0)
    ch = np.clip(-o.bat, 0, None).sum(axis=0)
    residual: FloatArray = gen + imp + dis - o.load.sum(axis=0) - exp - ch - o.losses - o.spill
    return residual


def outage_unserved_kwh(engine: Engine) -> dict[str, float]:
    """Energy demanded but not served during each utility outage of the run, kWh.

    An outage counts from its start to the step at which the MEG is back on the grid, that step
    included: the outage window ``[start, end)`` and its restoration tail (the steps waiting for
    the sync check, and the resynchronising step, whose open-transition break leaves the loads
    unserved for the transfer time). Outages that the run does not reach are left out; one the
    run cuts short counts up to the run's end.

    Returns
    -------
    dict
        ``outage start (ISO 8601) -> unserved energy, kWh``, in the site file's order.
    """
    return {o["start"]: o["unserved_kwh"] for o in outages(engine)}


def summarize(engine: Engine) -> dict[str, Any]:
    """The run's summary: every figure in kWh, kW, hours or kg CO2; with the study sections
    (:func:`openmeg.sim.report_study.study`) that the report's tables show."""
    p, o, site = engine.plant, engine.out, engine.site
    dt = p.dt_h
    kwh = float(dt)

    def e(x: FloatArray) -> float:
        return round(float(np.sum(x)) * kwh, 6)

    energy: dict[str, float] = {}
    for i, d in enumerate(p.ren_ids):
        energy[d] = e(o.ren[i])
    for i, d in enumerate(p.load_ids):
        energy[d] = -e(o.load[i])
    for i, d in enumerate(p.bat_ids):
        energy[d] = e(o.bat[i])
    for i, d in enumerate(p.chp_ids):
        energy[d] = e(o.chp[i])
    for i, d in enumerate(p.fc_ids):
        energy[d] = e(o.fc[i])
    demand = float(p.load_dem[:, : engine.k].sum()) * kwh
    served = float(o.load.sum()) * kwh
    imp = e(np.clip(o.grid, 0, None))
    exp = e(np.clip(-o.grid, 0, None))
    gen = e(o.ren) + e(o.chp) + e(o.fc)
    island = o.mode == kernel.ISLAND
    chp_fuel = (
        (o.chp / p.chp_par[:, kernel.C_EEL][:, None]).sum(axis=1) * kwh
        if len(p.chp_ids)
        else np.zeros(0)
    )
    fc_fuel = (o.fc / p.fc_eta[:, None]).sum(axis=1) * kwh if len(p.fc_ids) else np.zeros(0)
    boiler_fuel = (
        (o.boiler / p.boiler_eta[:, None]).sum(axis=1) * kwh if len(p.hs_ids) else np.zeros(0)
    )
    co2 = (
        imp * site.utility.co2_kg_per_kwh
        + float(np.dot(chp_fuel, p.chp_fuel_co2))
        + float(np.dot(fc_fuel, p.fc_fuel_co2))
        + float(np.dot(boiler_fuel, p.boiler_co2))
    )
    residual = balance_residual_kw(engine)
    meters = {}
    for m, net in MeterMap.of(site, p).import_kw(o, slice(0, engine.k)).items():
        imp_m, exp_m = step_energies_kwh(net, dt)
        meters[m] = {
            "import_kwh": round(float(imp_m.sum()), 6),
            "export_kwh": round(float(exp_m.sum()), 6),
        }
    pf = engine.pf_log
    return {
        "site": site.site.id,
        "start": p.index[0].isoformat(),
        "steps": int(engine.k),
        "step_s": p.step_s,
        "energy_kwh": energy,
        "import_kwh": imp,
        "export_kwh": exp,
        "load_kwh": round(demand, 6),
        "served_kwh": round(served, 6),
        "unserved_kwh": round(demand - served, 6),
        "outage_unserved_kwh": outage_unserved_kwh(engine),
        "generation_kwh": round(gen, 6),
        "curtailed_kwh": round(float(p.ren_avail[:, : engine.k].sum()) * kwh - e(o.ren), 6),
        "storage_charge_kwh": e(np.clip(-o.bat, 0, None)),
        "storage_discharge_kwh": e(np.clip(o.bat, 0, None)),
        "losses_kwh": e(o.losses),
        "spilled_kwh": e(o.spill),
        "self_sufficiency": round(1.0 - imp / served, 6) if served > 0 else 0.0,
        "peak_import_kw": round(float(max(o.grid.max(), 0.0)), 6),
        "peak_export_kw": round(float(max(-o.grid.min(), 0.0)), 6),
        "islanded_hours": round(float(island.sum()) * dt, 6),
        "blackout_hours": round(float((o.mode == kernel.BLACKOUT).sum()) * dt, 6),
        "co2_kg": round(co2, 3),
        "balance_error_kwh": float(np.max(np.abs(residual))) * kwh if residual.size else 0.0,
        "heat": {
            "demand_kwh": e(p.heat_dem[:, : engine.k]),
            "chp_kwh": e(o.chp_heat),
            "boiler_kwh": e(o.boiler),
            "dumped_kwh": e(o.heat_dumped),
            "unserved_kwh": e(o.heat_unserved),
        },
        "island_frequency_hz": {
            "min": float(o.freq[island].min()) if island.any() else None,
            "max": float(o.freq[island].max()) if island.any() else None,
        },
        "power_flow": {
            "runs": len(pf.step),
            "vm_min_pu": min(pf.vm_min_pu) if pf.step else None,
            "vm_max_pu": max(pf.vm_max_pu) if pf.step else None,
            "line_loading_max_pct": max(pf.line_loading_max_pct) if pf.step else None,
        },
        "meters": meters,
        "events": engine.event_list(),
        **study(engine, energy),
    }
