"""Run the simulated MEG through time: the step loop in chunks, a power flow between chunks."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from openmeg.core.site import Site
from openmeg.sim.grid import kernel
from openmeg.sim.grid.powerflow import BatchPowerFlow
from openmeg.sim.physics.pv import FloatArray
from openmeg.sim.plant import Plant

EVENT_TEXT = {
    1: "utility grid lost: transfer switch opened, MEG islanded",
    2: "utility grid back: sync check passed, MEG resynchronised",
    3: "utility grid back: waiting for the sync check (frequency, angle, voltage)",
    4: "black start from the grid-forming units",
    5: "blackout: the grid-forming units cannot carry the critical loads",
}
EVENT_CODE = {1: "islanded", 2: "resynchronised", 3: "sync_wait", 4: "black_start", 5: "blackout"}


@dataclass(kw_only=True)
class PlantState:
    """The state the step loop carries from one step to the next."""

    soc: FloatArray
    chp_on: FloatArray
    chp_tmin: FloatArray
    chp_p: FloatArray
    fc_p: FloatArray
    hs_e: FloatArray
    shed: np.ndarray
    mode: FloatArray  # kernel.M_* slots
    loss_ratio: float = 0.02

    @classmethod
    def initial(cls, plant: Plant, f0: float) -> PlantState:
        n_c = len(plant.chp_ids)
        return cls(
            soc=plant.bat_init.copy(),
            chp_on=np.zeros(n_c),
            chp_tmin=plant.chp_par[:, kernel.C_DOWN].copy() if n_c else np.zeros(0),
            chp_p=np.zeros(n_c),
            fc_p=plant.fc_par[:, kernel.F_PSET].copy() if len(plant.fc_ids) else np.zeros(0),
            hs_e=plant.hs_init.copy(),
            shed=np.zeros(len(plant.load_ids), dtype=np.uint8),
            mode=np.array([0.0, 0.0, f0, 0.0, 0.0, 0.0]),
        )


@dataclass(kw_only=True)
class Outputs:
    """Every device's power at every step (kW), and the MEG-wide series."""

    ren: FloatArray
    load: FloatArray
    bat: FloatArray
    soc: FloatArray
    chp: FloatArray
    chp_heat: FloatArray
    fc: FloatArray
    hs: FloatArray
    boiler: FloatArray
    heat_unserved: FloatArray
    heat_dumped: FloatArray
    grid: FloatArray
    losses: FloatArray
    spill: FloatArray
    freq: FloatArray
    mode: FloatArray

    @classmethod
    def empty(cls, plant: Plant) -> Outputs:
        n = plant.n_steps

        def z(rows: int) -> FloatArray:
            return np.zeros((rows, n))

        n_b, n_c, n_hs = len(plant.bat_ids), len(plant.chp_ids), len(plant.hs_ids)
        return cls(
            ren=z(len(plant.ren_ids)),
            load=z(len(plant.load_ids)),
            bat=z(n_b),
            soc=z(n_b),
            chp=z(n_c),
            chp_heat=z(n_c),
            fc=z(len(plant.fc_ids)),
            hs=z(n_hs),
            boiler=z(n_hs),
            heat_unserved=z(n_hs),
            heat_dumped=z(n_hs),
            grid=np.zeros(n),
            losses=np.zeros(n),
            spill=np.zeros(n),
            freq=np.zeros(n),
            mode=np.zeros(n),
        )


@dataclass(kw_only=True)
class PowerFlowLog:
    """Power flow results at the instants they ran."""

    step: list[int] = field(default_factory=list)
    vm_min_pu: list[float] = field(default_factory=list)
    vm_max_pu: list[float] = field(default_factory=list)
    line_loading_max_pct: list[float] = field(default_factory=list)
    losses_kw: list[float] = field(default_factory=list)
    vm_pu: list[np.ndarray] = field(default_factory=list)
    """Voltage of every network bus at each power flow (float32, in the network's bus order)."""
    last_vm_pu: FloatArray | None = None
    """Voltage of every network bus at the latest power flow."""
    last_line_loading_pct: FloatArray | None = None


class Engine:
    """Steps one plant; ``advance`` runs any number of steps with optional commands."""

    def __init__(self, site: Site, plant: Plant, net: Any) -> None:
        self.site = site
        self.plant = plant
        self.f0 = float(site.site.frequency_hz)
        self.state = PlantState.initial(plant, self.f0)
        self.out = Outputs.empty(plant)
        self.events = np.zeros((4096, 2), dtype=np.int64)
        self.pf_log = PowerFlowLog()
        self.k = 0
        pcc = int(net.bus.index[net.bus["name"] == site.utility.pcc_bus][0])
        self._pf_grid = BatchPowerFlow(net, slack_bus=pcc)
        gf = [i for i in range(len(plant.bat_ids)) if plant.bat_par[i, kernel.B_GF] > 0]
        self._slack_battery = gf[0] if gf else -1
        self._pf_island = BatchPowerFlow(net, slack_bus=int(plant.bat_bus[gf[0]])) if gf else None
        self._n_pd_buses = len(net.bus)
        self.bus_names = [str(name) for name in net.bus["name"]]
        """The network's bus names, in the order of ``pf_log.vm_pu``."""
        self.bus_alive = np.ones(self._n_pd_buses, dtype=np.uint8)
        controllers = {c.kind: c.enabled for c in site.controllers}
        self.ctrl_self_consumption = controllers.get("self_consumption", False)
        self.ctrl_heat_led = controllers.get("heat_led_chp", False)
        u = site.utility
        self.transfer_frac = min(1.0, u.transfer_time_s / plant.step_s)
        self.no_cmd = (
            np.full(len(plant.bat_ids), np.nan),
            np.full(len(plant.chp_ids), np.nan),
            np.full(len(plant.fc_ids), np.nan),
        )

    def advance(
        self,
        n_steps: int,
        *,
        bat_cmd: FloatArray | None = None,
        chp_cmd: FloatArray | None = None,
        fc_cmd: FloatArray | None = None,
    ) -> None:
        """Run ``n_steps`` steps; command arrays (kW, NaN = default controller) hold for all."""
        p, s, o, u = self.plant, self.state, self.out, self.site.utility
        k1 = min(self.k + n_steps, p.n_steps)
        kernel.run_steps(
            self.k,
            k1,
            p.dt_h,
            self.f0,
            self.plant.scenario.simulation.shedding_below(self.f0),
            u.sync_check.max_df_hz,
            u.sync_check.max_dphi_deg,
            u.sync_check.max_dv_pu,
            self.transfer_frac,
            u.transfer_switch == "ctts",
            u.import_limit_kw,
            u.export_limit_kw,
            s.loss_ratio,
            self.ctrl_self_consumption,
            self.ctrl_heat_led,
            p.grid_up,
            p.grid_v_pu,
            p.grid_angle_deg,
            p.ren_avail,
            p.ren_group,
            p.load_dem,
            p.load_prio,
            p.load_group,
            p.heat_dem,
            p.bat_par,
            p.bat_group,
            p.chp_par,
            p.fc_par,
            p.hs_par,
            self.bus_alive[p.load_bus],
            self.bus_alive[p.ren_bus],
            self._dead_off(self.no_cmd[0] if bat_cmd is None else bat_cmd, p.bat_bus),
            self._dead_off(self.no_cmd[1] if chp_cmd is None else chp_cmd, p.chp_bus),
            self._dead_off(self.no_cmd[2] if fc_cmd is None else fc_cmd, p.fc_bus),
            s.soc,
            s.chp_on,
            s.chp_tmin,
            s.chp_p,
            s.fc_p,
            s.hs_e,
            s.shed,
            s.mode,
            self.events,
            o.ren,
            o.load,
            o.bat,
            o.soc,
            o.chp,
            o.chp_heat,
            o.fc,
            o.hs,
            o.boiler,
            o.heat_unserved,
            o.heat_dumped,
            o.grid,
            o.losses,
            o.spill,
            o.freq,
            o.mode,
        )
        self.k = k1

    def set_dead_buses(self, dead: set[int]) -> None:
        """De-energise network buses (a fault, an isolated section): their loads go unserved,
        their units stop; ``set()`` brings every bus back."""
        self.bus_alive[:] = 1
        for bus in dead:
            self.bus_alive[bus] = 0

    def _dead_off(self, commands: FloatArray, buses: np.ndarray) -> FloatArray:
        """Commands with 0 for the units on dead buses."""
        if self.bus_alive.all():
            return commands
        return np.where(self.bus_alive[buses] > 0, commands, 0.0)

    def bus_injections_mw(
        self, k: int, *, without_battery: int = -1
    ) -> tuple[FloatArray, FloatArray]:
        """Active and reactive injections (MW, Mvar, into the bus) per network bus at step ``k``.

        ``without_battery`` leaves out one battery: the grid-forming slack of an island.
        """
        p, o = self.plant, self.out
        pb = np.zeros(self._n_pd_buses)
        qb = np.zeros(self._n_pd_buses)
        bat = o.bat[:, k].copy()
        if without_battery >= 0:
            bat[without_battery] = 0.0
        np.add.at(pb, p.ren_bus, o.ren[:, k])
        np.add.at(pb, p.load_bus, -o.load[:, k])
        np.add.at(qb, p.load_bus, -o.load[:, k] * p.load_tan_phi)
        np.add.at(pb, p.bat_bus, bat)
        np.add.at(pb, p.chp_bus, o.chp[:, k])
        np.add.at(pb, p.fc_bus, o.fc[:, k])
        return pb / 1000.0, qb / 1000.0

    def power_flow(self, k: int) -> None:
        """Solve the network at step ``k`` and update the loss ratio the step loop uses."""
        mode = int(self.out.mode[k])
        if not self.bus_alive.all():
            return  # the network is reconfigured: its losses keep the last ratio meanwhile
        if mode == kernel.GRID:
            solver, slack_battery = self._pf_grid, -1
        elif mode == kernel.ISLAND and self._pf_island is not None:
            solver, slack_battery = self._pf_island, self._slack_battery
        else:
            return
        pb, qb = self.bus_injections_mw(k, without_battery=slack_battery)
        res = solver.solve(pb[None, :], qb[None, :])
        served = float(self.out.load[:, k].sum())
        losses_kw = float(res.losses_mw[0]) * 1000.0
        if served > 0:
            self.state.loss_ratio = max(0.0, losses_kw / served)
        self.pf_log.step.append(k)
        self.pf_log.vm_min_pu.append(float(res.vm_pu[0].min()))
        self.pf_log.vm_max_pu.append(float(res.vm_pu[0].max()))
        self.pf_log.line_loading_max_pct.append(float(res.line_loading_pct[0].max()))
        self.pf_log.losses_kw.append(losses_kw)
        self.pf_log.vm_pu.append(res.vm_pu[0].astype(np.float32))
        self.pf_log.last_vm_pu = res.vm_pu[0]
        self.pf_log.last_line_loading_pct = res.line_loading_pct[0]

    def run(self, progress: Callable[[int], None] | None = None) -> None:
        """Run to the end, a power flow every ``powerflow_interval_min``."""
        self.run_until(self.plant.n_steps, progress)

    def run_until(self, k_stop: int, progress: Callable[[int], None] | None = None) -> None:
        """Run up to step ``k_stop``, a power flow at every ``powerflow_interval_min`` boundary."""
        pf_steps = max(
            1, round(self.plant.scenario.simulation.powerflow_interval_min * 60 / self.plant.step_s)
        )
        k_stop = min(k_stop, self.plant.n_steps)
        while self.k < k_stop:
            next_pf = (self.k // pf_steps + 1) * pf_steps
            self.advance(min(next_pf, k_stop) - self.k)
            if self.k % pf_steps == 0 or self.k == self.plant.n_steps:
                self.power_flow(self.k - 1)
            if progress is not None:
                progress(self.k)

    def event_list(self) -> list[dict[str, Any]]:
        n = int(self.state.mode[kernel.M_NEV])
        out = []
        for k, code in self.events[:n]:
            out.append(
                {
                    "ts": self.plant.index[int(k)].isoformat(),
                    "code": EVENT_CODE[int(code)],
                    "text": EVENT_TEXT[int(code)],
                }
            )
        return out
