"""The simulated plant as the platform sees a real one: a process image to read, setpoints and
commands to write, and state to save. It advances one step each time setpoints are written.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

import numpy as np

from openmeg.core.errors import CommandError
from openmeg.core.points import Access, PointSpec
from openmeg.core.site import Site, network_of
from openmeg.sim.engine import Engine, PlantState
from openmeg.sim.grid import kernel
from openmeg.sim.metering import MeterMap, sensor_series
from openmeg.sim.plant import build_plant

COMMANDS = {
    "pcc/utility_available": PointSpec(
        name="utility_available",
        unit="1",
        access=Access.READ_WRITE,
        low=0,
        high=1,
        description="1: the utility grid is there; 0: take it down (simulated outage)",
    ),
}


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
        self._engine = self._build(start.replace(microsecond=0), None)
        self._meters = MeterMap.of(site, self._engine.plant)
        self.registers = {m: [0.0, 0.0] for m in self._meters.members}  # import, export kWh
        self._utility_override: bool | None = None

    def _build(self, start: datetime, state: PlantState | None) -> Engine:
        plant = build_plant(self.site, self._net, start, self._horizon_steps, self.step_s)
        engine = Engine(self.site, plant, self._net)
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
        img["pcc/mode"] = float(o.mode[k]) if e.k else float(e.state.mode[kernel.M_MODE])
        img["pcc/utility_available"] = float(p.grid_up[min(e.k, p.n_steps - 1)])
        return img

    def write(self, setpoints: Mapping[str, float]) -> None:
        """Apply the setpoints (``device/p_set_kw``) and advance the physics one step."""
        e = self._engine
        if e.k >= e.plant.n_steps:
            self._engine = e = self._build(self.time, e.state)
        if self._utility_override is not None:
            e.plant.grid_up[e.k] = 1 if self._utility_override else 0
        bat = np.array([setpoints.get(f"{b}/p_set_kw", np.nan) for b in e.plant.bat_ids])
        chp = np.array([setpoints.get(f"{c}/p_set_kw", np.nan) for c in e.plant.chp_ids])
        e.advance(1, bat_cmd=bat, chp_cmd=chp)
        for m, value in self._meters.import_kw(e.out, e.k - 1).items():
            energy = float(value) * e.plant.dt_h
            self.registers[m][0 if energy >= 0 else 1] += abs(energy)

    def commandable(self) -> Mapping[str, PointSpec]:
        return COMMANDS

    def command(self, point: str, value: float) -> None:
        """Write a commandable point; ``CommandError`` says why a command is refused."""
        spec = COMMANDS.get(point)
        if spec is None:
            raise CommandError(f"no commandable point {point!r}; accepted: {', '.join(COMMANDS)}")
        try:
            spec.check_command(value)
        except ValueError as err:
            raise CommandError(str(err)) from err
        if value not in (0.0, 1.0):
            raise CommandError(f"{point} takes 0 or 1, got {value}")
        self._utility_override = None if value == 1.0 else False

    def state(self) -> list[tuple[str, dict[str, Any]]]:
        """What must survive a restart: device states and meter registers."""
        e = self._engine
        out: list[tuple[str, dict[str, Any]]] = [
            (b, {"soc": float(e.state.soc[i])}) for i, b in enumerate(e.plant.bat_ids)
        ]
        out += [(h, {"energy_kwh": float(e.state.hs_e[i])}) for i, h in enumerate(e.plant.hs_ids)]
        out += [(m, {"import_kwh": r[0], "export_kwh": r[1]}) for m, r in self.registers.items()]
        return out

    def restore(self, saved: Mapping[str, Mapping[str, Any]]) -> None:
        e = self._engine
        for i, b in enumerate(e.plant.bat_ids):
            if "soc" in saved.get(b, {}):
                e.state.soc[i] = float(saved[b]["soc"])
        for i, h in enumerate(e.plant.hs_ids):
            if "energy_kwh" in saved.get(h, {}):
                e.state.hs_e[i] = float(saved[h]["energy_kwh"])
        for m, reg in self.registers.items():
            if m in saved:
                reg[0] = float(saved[m].get("import_kwh", 0.0))
                reg[1] = float(saved[m].get("export_kwh", 0.0))
