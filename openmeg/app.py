"""Composition root: wires site, clock, bus, store, the simulated plant and the control cycle."""

from __future__ import annotations

from openmeg.core.bus import Bus
from openmeg.core.clock import Clock
from openmeg.core.site import Site
from openmeg.core.store import Store
from openmeg.der.ratings import HeatStorage
from openmeg.operation.controllers.default import (
    BatteryTarget,
    ChpUnit,
    HeatLedChp,
    SelfConsumption,
)
from openmeg.operation.cycle import ControlCycle, Controller
from openmeg.operation.runtime import Runtime
from openmeg.sim.live_plant import SimulatedPlant


def default_controllers(site: Site) -> list[Controller]:
    """The controllers the site file asks for, built from its devices and meters."""
    meter_of = {d: m.id for m in site.meters for d in m.devices}
    out: list[Controller] = []
    for c in site.controllers:
        if not c.enabled:
            continue
        if c.kind == "self_consumption":
            targets = [
                BatteryTarget(
                    battery=b.id, meter="pcc" if b.owner == "community" else meter_of[b.id]
                )
                for b in site.devices_of("battery")
            ]
            out.append(SelfConsumption(targets=targets, priority=c.priority))
        elif c.kind == "heat_led_chp":
            units = []
            for chp in site.devices_of("chp"):
                hs = site.device_as(chp.heat_storage, HeatStorage)
                units.append(
                    ChpUnit(
                        chp=chp.id,
                        heat_storage=hs.id,
                        eta_el=chp.eta_el,
                        eta_th=chp.eta_th,
                        p_min_kw=chp.p_el_min_kw,
                        p_max_kw=chp.p_el_max_kw,
                        heat_capacity_kwh=hs.capacity_kwh,
                    )
                )
            out.append(HeatLedChp(units=units, priority=c.priority))
    return out


def live_meg(
    site: Site,
    *,
    clock: Clock,
    bus: Bus,
    store: Store,
    step_s: float = 1.0,
    persist_every_s: float = 60.0,
    horizon_h: float = 24.0,
    plant: SimulatedPlant | None = None,
) -> Runtime:
    """The MEG live: the simulated plant of ``site`` operated by the runtime and its controllers."""
    if plant is None:
        plant = SimulatedPlant(site, start=clock.now(), step_s=step_s, horizon_h=horizon_h)
    return Runtime(
        site.site.id,
        plant,
        ControlCycle(default_controllers(site)),
        clock=clock,
        bus=bus,
        store=store,
        step_s=step_s,
        persist_every_s=persist_every_s,
        domains=site.domains(),
    )
