"""Composition root: wires site, clock, bus, store, the simulated plant and the control cycle."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import numpy as np

from openmeg.core.bus import Bus
from openmeg.core.clock import Clock
from openmeg.core.messages import (
    AlarmMessage,
    ModeChange,
    PointUpdate,
    alarm_topic,
    mode_topic,
    point_topic,
)
from openmeg.core.points import Point, PointId, unit_of
from openmeg.core.site import Site, network_of
from openmeg.core.store import Store
from openmeg.der.ratings import HeatStorage
from openmeg.operation.controllers.default import (
    BatteryTarget,
    ChpUnit,
    HeatLedChp,
    SelfConsumption,
)
from openmeg.operation.cycle import ControlCycle, Controller
from openmeg.sim.engine import Engine, PlantState
from openmeg.sim.grid import kernel
from openmeg.sim.metering import MeterMap, sensor_series
from openmeg.sim.plant import build_plant

MODES = {kernel.GRID: "grid", kernel.ISLAND: "island", kernel.BLACKOUT: "blackout"}


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


@dataclass(kw_only=True)
class Status:
    """What the live status view shows."""

    ts: datetime | None = None
    mode: str = "grid"
    frequency_hz: float = 0.0
    import_kw: float = 0.0
    cycles: int = 0
    cycle_ms: float = 0.0
    soc: dict[str, float] = field(default_factory=dict)
    alarms: dict[str, str] = field(default_factory=dict)
    points_stored: int = 0


class LiveMeg:
    """The MEG live: each cycle reads the plant, runs the controllers, steps the plant, persists."""

    def __init__(
        self,
        site: Site,
        *,
        clock: Clock,
        bus: Bus,
        store: Store,
        step_s: float = 1.0,
        persist_every_s: float = 60.0,
        horizon_h: float = 24.0,
    ) -> None:
        self.site, self.clock, self.bus, self.store = site, clock, bus, store
        self.step_s = step_s
        self.persist_every = max(1, round(persist_every_s / step_s))
        self.horizon_steps = round(horizon_h * 3600 / step_s)
        self.net = network_of(site)
        self.cycle = ControlCycle(default_controllers(site))
        self.status = Status()
        self._pending: list[Point] = []
        self._engine = self._new_engine(clock.now(), None)
        self._restore_state()
        self._meters = MeterMap.of(site, self._engine.plant)
        self.registers = {m: [0.0, 0.0] for m in self._meters.members}  # import, export kWh
        self._restore_registers()

    # -- plant
    def _new_engine(self, start: datetime, state: PlantState | None) -> Engine:
        start = start.replace(microsecond=0)
        engine = Engine(
            self.site,
            build_plant(self.site, self.net, start, self.horizon_steps, self.step_s),
            self.net,
        )
        if state is not None:
            engine.state = state
        return engine

    def _restore_registers(self) -> None:
        saved = self.store.load_states(self.site.site.id)
        for m, reg in self.registers.items():
            if m in saved:
                reg[0] = float(saved[m].get("import_kwh", 0.0))
                reg[1] = float(saved[m].get("export_kwh", 0.0))

    def _restore_state(self) -> None:
        saved = self.store.load_states(self.site.site.id)
        e = self._engine
        for i, b in enumerate(e.plant.bat_ids):
            if b in saved and "soc" in saved[b]:
                e.state.soc[i] = float(saved[b]["soc"])
        for i, h in enumerate(e.plant.hs_ids):
            if h in saved and "energy_kwh" in saved[h]:
                e.state.hs_e[i] = float(saved[h]["energy_kwh"])

    # -- process image
    def process_image(self) -> dict[str, float]:
        e = self._engine
        p, o, k = e.plant, e.out, max(e.k - 1, 0)
        img: dict[str, float] = {}
        for i, d in enumerate(p.ren_ids):
            img[f"{d}/p_kw"] = float(o.ren[i, k])
        for i, d in enumerate(p.load_ids):
            img[f"{d}/p_kw"] = -float(o.load[i, k])
        for i, d in enumerate(p.bat_ids):
            img[f"{d}/p_kw"] = float(o.bat[i, k])
            img[f"{d}/soc"] = float(e.state.soc[i])
        for i, d in enumerate(p.chp_ids):
            img[f"{d}/p_kw"] = float(o.chp[i, k])
            img[f"{d}/on"] = float(e.state.chp_on[i])
            img[f"{d}/heat_kw"] = float(o.chp_heat[i, k])
        for i, d in enumerate(p.fc_ids):
            img[f"{d}/p_kw"] = float(o.fc[i, k])
        for i, d in enumerate(p.hs_ids):
            img[f"{d}/soc"] = float(e.state.hs_e[i] / p.hs_par[i, kernel.H_CAP])
            img[f"{d}/heat_demand_kw"] = float(p.heat_dem[i, min(e.k, p.n_steps - 1)])
        for m, value in self._meters.import_kw(o, k).items():
            img[f"{m}/import_kw"] = float(value)
            img[f"{m}/import_kwh"], img[f"{m}/export_kwh"] = self.registers[m]
        for sensor, (temp, vib, noise) in sensor_series(self.site, p, o, slice(k, k + 1)).items():
            img[f"{sensor}/temperature_c"] = float(temp[0])
            img[f"{sensor}/vibration_mm_s"] = float(vib[0])
            img[f"{sensor}/noise_db"] = float(noise[0])
        img["pcc/import_kw"] = float(o.grid[k])
        img["pcc/frequency_hz"] = float(o.freq[k]) if e.k else e.f0
        img["pcc/mode"] = float(o.mode[k])
        return img

    # -- one cycle
    async def step(self) -> None:
        e = self._engine
        if e.k >= e.plant.n_steps:
            self._engine = e = self._new_engine(self.clock.now(), e.state)
        image = self.process_image()
        result = self.cycle.run(image)
        await self._alarms(result.failures)
        bat_cmd = np.array([result.setpoints.get(f"{b}/p_set_kw", np.nan) for b in e.plant.bat_ids])
        chp_cmd = np.array([result.setpoints.get(f"{c}/p_set_kw", np.nan) for c in e.plant.chp_ids])
        # the controllers own every unit they command; the rest keeps its local law
        mode_before = int(e.state.mode[kernel.M_MODE])
        e.advance(1, bat_cmd=bat_cmd, chp_cmd=chp_cmd)
        for m, value in self._meters.import_kw(e.out, e.k - 1).items():
            energy = float(value) * e.plant.dt_h
            self.registers[m][0 if energy >= 0 else 1] += abs(energy)
        now = (e.plant.index[e.k - 1] + timedelta(seconds=self.step_s)).to_pydatetime()
        self.status.cycles += 1
        self.status.cycle_ms = result.duration_s * 1000.0
        image = self.process_image()
        mode_after = int(e.state.mode[kernel.M_MODE])
        if mode_after != mode_before:
            msg = ModeChange(site=self.site.site.id, mode=MODES[mode_after], ts=now)
            await self.bus.publish(mode_topic(self.site.site.id), msg)
            self.store.add_event(
                ts=now,
                site=self.site.site.id,
                kind="mode",
                source="pcc",
                code=MODES[mode_after],
                text=f"MEG now in {MODES[mode_after]} mode",
            )
        await self._publish(image, now)
        self._update_status(image, now)
        if self.status.cycles % self.persist_every == 0:
            self.flush()

    async def _publish(self, image: dict[str, float], now: datetime) -> None:
        site = self.site.site.id
        for key, value in image.items():
            device, name = key.split("/")
            point = Point(
                id=PointId(site=site, device=device, name=name),
                value=value,
                unit=unit_of(name),
                ts=now,
            )
            await self.bus.publish(point_topic(site, device, name), PointUpdate.of(point))
            if self.status.cycles % self.persist_every == 0:
                self._pending.append(point)

    async def _alarms(self, failures: dict[str, str]) -> None:
        site, now = self.site.site.id, self.clock.now()
        for name, text in failures.items():
            if name not in self.status.alarms:
                self.status.alarms[name] = text
                await self.bus.publish(
                    alarm_topic(site, name),
                    AlarmMessage(
                        site=site,
                        source=name,
                        code="controller_failed",
                        text=text,
                        active=True,
                        ts=now,
                        severity="critical",
                    ),
                )
                self.store.add_event(
                    ts=now,
                    site=site,
                    kind="alarm",
                    source=name,
                    code="controller_failed",
                    text=text,
                    severity="critical",
                )
        for name in [n for n in self.status.alarms if n not in failures]:
            del self.status.alarms[name]
            await self.bus.publish(
                alarm_topic(site, name),
                AlarmMessage(
                    site=site,
                    source=name,
                    code="controller_failed",
                    text="cleared",
                    active=False,
                    ts=now,
                ),
            )
            self.store.add_event(
                ts=now,
                site=site,
                kind="alarm_clear",
                source=name,
                code="controller_failed",
                text="cleared",
            )

    def _update_status(self, image: dict[str, float], now: datetime) -> None:
        s = self.status
        s.ts = now
        s.mode = MODES[int(image["pcc/mode"])]
        s.frequency_hz = image["pcc/frequency_hz"]
        s.import_kw = image["pcc/import_kw"]
        s.soc = {b: image[f"{b}/soc"] for b in self._engine.plant.bat_ids}

    def flush(self) -> None:
        """Write pending points and the devices' state to the store."""
        if self._pending:
            self.status.points_stored += self.store.write_points(self._pending)
            self._pending = []
        e = self._engine
        states = [(b, {"soc": float(e.state.soc[i])}) for i, b in enumerate(e.plant.bat_ids)]
        states += [
            (h, {"energy_kwh": float(e.state.hs_e[i])}) for i, h in enumerate(e.plant.hs_ids)
        ]
        self.store.save_states(self.site.site.id, self.clock.now(), states)

    async def run(self, stop: asyncio.Event, *, max_cycles: int | None = None) -> None:
        """Cycle every ``step_s`` of the clock until ``stop`` is set; persist on the way out."""
        try:
            while not stop.is_set() and (max_cycles is None or self.status.cycles < max_cycles):
                await self.step()
                await self.clock.sleep(self.step_s)
        finally:
            self.flush()

    def set_grid(
        self, *, up: bool, at: datetime | None = None, duration: timedelta | None = None
    ) -> None:
        """Take the utility grid down (or bring it back) from now on, as an operator command."""
        e = self._engine
        k = e.k
        end = (
            e.plant.n_steps
            if duration is None
            else min(e.plant.n_steps, k + round(duration.total_seconds() / self.step_s))
        )
        e.plant.grid_up[k:end] = 1 if up else 0
