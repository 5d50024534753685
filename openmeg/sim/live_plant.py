"""The simulated plant of the field: every device's physics, stepped on the field's clock.

Each device does only what is written into its own controls (a storage setpoint, a power limit,
a disconnection) or, without any, what it does by itself: a battery idles, a PV or wind
inverter gives what it has, a CHP stays off, a fuel cell holds its own setpoint. No controller
of the platform runs here: the platform operates the devices over the wire.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

import numpy as np

from openmeg.core.errors import CommandError
from openmeg.core.points import Access, PointSpec
from openmeg.core.site import Site, network_of
from openmeg.der.ratings import Battery
from openmeg.sim.engine import Engine, PlantState
from openmeg.sim.grid import kernel
from openmeg.sim.metering import MeterMap, sensor_series
from openmeg.sim.plant import build_plant
from openmeg.sim.switchgear import Switchgear

UTILITY_COMMANDS = {
    "pcc/utility_available": PointSpec(
        name="utility_available",
        unit="1",
        access=Access.READ_WRITE,
        low=0,
        high=1,
        description="1: the utility grid is there; 0: take it down (simulated outage)",
    ),
    "pcc/switch_command": PointSpec(
        name="switch_command",
        unit="1",
        access=Access.READ_WRITE,
        low=0,
        high=2,
        description="1: open the PCC switch (intentional island); 2: close it again",
    ),
}


def device_commands(site: Site) -> dict[str, PointSpec]:
    """Every commandable point of the simulated devices of ``site``."""
    out = dict(UTILITY_COMMANDS)
    rw = Access.READ_WRITE
    for d in site.devices:
        if isinstance(d, Battery):
            out[f"{d.id}/p_set_kw"] = PointSpec(
                name="p_set_kw",
                unit="kW",
                access=rw,
                low=-d.p_charge_max_kw,
                high=d.p_discharge_max_kw,
                description="storage setpoint, discharge positive",
            )
        elif d.kind in ("pv", "wind", "chp", "fuel_cell"):
            out[f"{d.id}/p_limit_pct"] = PointSpec(
                name="p_limit_pct",
                unit="%",
                access=rw,
                low=0,
                high=100,
                description="active power limit, percent of rating",
            )
        if d.kind in ("pv", "wind", "chp", "fuel_cell", "battery"):
            out[f"{d.id}/connected"] = PointSpec(
                name="connected",
                unit="1",
                access=rw,
                low=0,
                high=1,
                description="0 disconnects the unit, 1 connects it",
            )
    for switch in [s.id for s in site.network.switches] + [t.id for t in site.network.ties]:
        out[f"{switch}/switch_command"] = PointSpec(
            name="switch_command",
            unit="1",
            access=rw,
            low=0,
            high=3,
            description="1 opens the line switch, 2 closes it, 3 resets its fault indicator",
        )
    return out


LIVE_POWERFLOW_S = 60.0
"""How often the live plant solves its network (the site file's interval is for ``simulate``)."""


class SimulatedPlant:
    """Every simulated device of one site, stepped ``step_s`` at a time from ``start``.

    The physics are computed a ``horizon_h`` ahead and rebuilt when the horizon is used up; the
    state (states of charge, heat store, units on or off, meter registers) carries over.
    """

    def __init__(
        self, site: Site, *, start: datetime, step_s: float, horizon_h: float = 24.0
    ) -> None:
        self.site = site
        self.step_s = step_s
        self._horizon_steps = max(1, round(horizon_h * 3600 / step_s))
        self._net = network_of(site)
        self.switchgear = Switchgear(site, self._net)
        self._engine = self._build(start.replace(microsecond=0), None)
        self._meters = MeterMap.of(site, self._engine.plant)
        bus_of = {
            str(n): int(i) for i, n in zip(self._net.bus.index, self._net.bus["name"], strict=True)
        }
        bus_of_device = {d.id: bus_of[d.bus] for d in site.devices}
        self._meter_bus = {
            m.id: bus_of_device[m.devices[0]] if m.devices else bus_of[site.utility.pcc_bus]
            for m in site.meters
        }
        self._phase_v = np.asarray(self._net.bus["vn_kv"], dtype=float) * 1000.0 / np.sqrt(3.0)
        self._pf_every = max(1, round(LIVE_POWERFLOW_S / step_s))
        self.registers = {m: [0.0, 0.0] for m in self._meters.members}  # import, export kWh
        self._utility_override: bool | None = None
        self._commands = device_commands(site)
        self._setpoint_override: dict[str, float] = {}
        self._limit_pct: dict[str, float] = {}
        self._disconnected: set[str] = set()
        self._extra_load_kw: dict[str, float] = {}
        self.energy_kwh: dict[str, float] = {}
        self.energy_in_kwh: dict[str, float] = {}
        evs = {d.id for d in site.devices_of("ev_charger")}
        self._ev_rows = [i for i, d in enumerate(self._engine.plant.load_ids) if d in evs]
        self._image: dict[str, float] = {}
        self._image_key: tuple[int, int] | None = None

    def _build(self, start: datetime, state: PlantState | None) -> Engine:
        plant = build_plant(self.site, self._net, start, self._horizon_steps, self.step_s)
        engine = Engine(self.site, plant, self._net)
        # the devices' own behaviour only: the platform's controllers act over the wire
        engine.ctrl_self_consumption = False
        engine.ctrl_heat_led = False
        if state is not None:
            state.mode[kernel.M_NEV] = 0  # events are counted per engine
            engine.state = state
        return engine

    @property
    def time(self) -> datetime:
        """The plant's time: the start of the next step."""
        e = self._engine
        if e.k < e.plant.n_steps:
            return e.plant.index[e.k].to_pydatetime()  # type: ignore[no-any-return]
        return (e.plant.index[-1] + timedelta(seconds=self.step_s)).to_pydatetime()  # type: ignore[no-any-return]

    def read(self) -> dict[str, float]:
        """The process image: every point's value at the end of the last step, ``device/name``."""
        key = (id(self._engine), self._engine.k)
        if self._image_key != key:
            self._image = self._read()
            self._image_key = key
        return self._image | self.switchgear.read()  # a switch moves between steps

    def _read(self) -> dict[str, float]:
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
        for d, kwh in self.energy_kwh.items():
            img[f"{d}/energy_kwh"] = kwh
        for d, kwh in self.energy_in_kwh.items():
            img[f"{d}/energy_in_kwh"] = kwh
        vm = e.pf_log.last_vm_pu
        if vm is not None:
            for m, bus in self._meter_bus.items():
                img[f"{m}/voltage_v"] = float(vm[bus] * self._phase_v[bus])
            img["grid/voltage_min_pu"] = float(vm.min())
            img["grid/voltage_max_pu"] = float(vm.max())
        loading = e.pf_log.last_line_loading_pct
        if loading is not None:
            img["grid/line_loading_max_pct"] = float(loading.max())
        img["pcc/import_kw"] = float(o.grid[k])
        img["pcc/frequency_hz"] = float(o.freq[k]) if e.k else e.f0
        img["pcc/mode"] = float(o.mode[k]) if e.k else float(e.state.mode[kernel.M_MODE])
        scheduled = float(p.grid_up[min(e.k, p.n_steps - 1)])
        override = self._utility_override
        img["pcc/utility_available"] = scheduled if override is None else float(override)
        return img

    def step(self) -> None:
        """Advance the physics one step under the controls the devices hold."""
        e = self._engine
        if e.k >= e.plant.n_steps:
            self._engine = e = self._build(self.time, e.state)
        p, k = e.plant, e.k
        if self._utility_override is not None:
            p.grid_up[k] = 1 if self._utility_override else 0
        for i, d in enumerate(p.load_ids):
            if d in self._extra_load_kw:
                p.load_dem[i, k] = max(0.0, p.load_dem[i, k] + self._extra_load_kw[d])
        e.set_dead_buses(self.switchgear.dead)
        for r, d in enumerate(p.ren_ids):
            limit = 0.0 if d in self._disconnected else self._limit_pct.get(d, 100.0)
            p.ren_avail[r, k] = min(p.ren_avail[r, k], limit / 100.0 * p.ren_rating_kw[r])
        bat = np.array(
            [
                0.0 if b in self._disconnected else self._setpoint_override.get(b, 0.0)
                for b in p.bat_ids
            ]
        )
        chp = np.array(
            [
                self._dispatched(c, np.nan, p.chp_par[i, kernel.C_PMAX])
                for i, c in enumerate(p.chp_ids)
            ]
        )
        # NaN: a cell without a limit runs its own setpoint, which an island may raise
        fc = np.array(
            [
                self._dispatched(f, np.nan, p.fc_par[i, kernel.F_PMAX])
                for i, f in enumerate(p.fc_ids)
            ]
        )
        e.advance(1, bat_cmd=bat, chp_cmd=chp, fc_cmd=fc)
        if e.k % self._pf_every == 1 or self._pf_every == 1:
            e.power_flow(e.k - 1)
        for m, value in self._meters.import_kw(e.out, e.k - 1).items():
            energy = float(value) * p.dt_h
            self.registers[m][0 if energy >= 0 else 1] += abs(energy)
        for ids, rows in (
            (p.ren_ids, e.out.ren),
            (p.bat_ids, e.out.bat),
            (p.chp_ids, e.out.chp),
            (p.fc_ids, e.out.fc),
        ):
            for i, d in enumerate(ids):
                out_kwh = max(float(rows[i, e.k - 1]), 0.0) * p.dt_h
                self.energy_kwh[d] = self.energy_kwh.get(d, 0.0) + out_kwh
        # energy taken in: storage charging, and EV chargers (their own meters' import)
        for i, d in enumerate(p.bat_ids):
            in_kwh = max(-float(e.out.bat[i, e.k - 1]), 0.0) * p.dt_h
            self.energy_in_kwh[d] = self.energy_in_kwh.get(d, 0.0) + in_kwh
        for i in self._ev_rows:
            in_kwh = max(float(e.out.load[i, e.k - 1]), 0.0) * p.dt_h
            d = p.load_ids[i]
            self.energy_in_kwh[d] = self.energy_in_kwh.get(d, 0.0) + in_kwh

    def _dispatched(self, device: str, default_kw: float, p_max_kw: float) -> float:
        """A dispatchable unit's request: 0 when disconnected, its enabled power limit (a
        setpoint for a CHP or fuel cell), else what it does by itself (``default_kw``; NaN
        keeps a CHP off)."""
        if device in self._disconnected:
            return 0.0
        limit = self._limit_pct.get(device)
        if limit is None:
            return default_kw
        return limit / 100.0 * p_max_kw

    def add_load_kw(self, load: str, kw: float) -> None:
        """A scenario's load step: ``load`` draws ``kw`` more (or less) from the next step on;
        ``KeyError`` names the loads there are."""
        if load not in self._engine.plant.load_ids:
            known = ", ".join(self._engine.plant.load_ids)
            raise KeyError(f"no load {load!r}; loads: {known}")
        self._extra_load_kw[load] = self._extra_load_kw.get(load, 0.0) + kw

    def revert(self, device: str) -> None:
        """The device lost its controller: it drops every held control (idle, no limit)."""
        self._setpoint_override.pop(device, None)
        self._limit_pct.pop(device, None)

    def release_limit(self, device: str) -> None:
        """The device's power limit is no longer enabled."""
        self._limit_pct.pop(device, None)

    def commandable(self) -> Mapping[str, PointSpec]:
        return self._commands

    def command(self, point: str, value: float) -> None:
        """Write a commandable point; ``CommandError`` says why a command is refused."""
        spec = self._commands.get(point)
        if spec is None:
            known = ", ".join(sorted(UTILITY_COMMANDS)) + ", <device>/p_set_kw, ..."
            raise CommandError(f"no commandable point {point!r}; accepted: {known}")
        try:
            spec.check_command(value)
        except ValueError as err:
            raise CommandError(str(err)) from err
        device, name = point.split("/")
        if device in self.switchgear.kind:
            self.switchgear.command(device, value)
            return
        if name in ("utility_available", "connected") and value not in (0.0, 1.0):
            raise CommandError(f"{point} takes 0 or 1, got {value}")
        if name == "switch_command" and value not in (0.0, 1.0, 2.0):
            raise CommandError(f"{point} takes 0 (none), 1 (open) or 2 (close), got {value}")
        if name == "utility_available":
            self._utility_override = None if value == 1.0 else False
        elif name == "switch_command" and value:
            self._utility_override = False if value == 1.0 else None
        elif name == "p_set_kw":
            self._setpoint_override[device] = value
        elif name == "p_limit_pct":
            self._limit_pct[device] = value
        elif name == "connected":
            if value == 1.0:
                self._disconnected.discard(device)
            else:
                self._disconnected.add(device)

    def state(self) -> list[tuple[str, dict[str, Any]]]:
        """What must survive a restart: device states, energy counters, meter registers, and
        the network's switches and fault."""
        e = self._engine
        out: dict[str, dict[str, Any]] = {}
        for i, b in enumerate(e.plant.bat_ids):
            out.setdefault(b, {})["soc"] = float(e.state.soc[i])
        for i, h in enumerate(e.plant.hs_ids):
            out.setdefault(h, {})["heat_kwh"] = float(e.state.hs_e[i])
        for d, kwh in self.energy_kwh.items():
            out.setdefault(d, {})["energy_kwh"] = kwh
        for d, kwh in self.energy_in_kwh.items():
            out.setdefault(d, {})["energy_in_kwh"] = kwh
        for m, r in self.registers.items():
            out.setdefault(m, {}).update(import_kwh=r[0], export_kwh=r[1])
        return list(out.items()) + self.switchgear.state()

    def restore(self, saved: Mapping[str, Mapping[str, Any]]) -> None:
        self.switchgear.restore(saved)
        e = self._engine
        for i, b in enumerate(e.plant.bat_ids):
            if "soc" in saved.get(b, {}):
                e.state.soc[i] = float(saved[b]["soc"])
        for i, h in enumerate(e.plant.hs_ids):
            if "heat_kwh" in saved.get(h, {}):
                e.state.hs_e[i] = float(saved[h]["heat_kwh"])
        for d, state in saved.items():
            if "energy_kwh" in state:
                self.energy_kwh[d] = float(state["energy_kwh"])
            if "energy_in_kwh" in state:
                self.energy_in_kwh[d] = float(state["energy_in_kwh"])
        for m, reg in self.registers.items():
            if m in saved:
                reg[0] = float(saved[m].get("import_kwh", 0.0))
                reg[1] = float(saved[m].get("export_kwh", 0.0))
