"""The simulated field of one site, as its own program: the plant's physics stepped on the
field's own clock, every device (line switches and ties included) a SunSpec Modbus TCP slave,
every building automation system a BACnet/IP device backed by its building's physics,
and a control interface for the scenarios (utility outage and return, a device that stops
answering, a fault on a line and its repair).

The platform meets it only at the wire; ``openmeg sim serve`` runs it.
"""

from __future__ import annotations

import asyncio
import json
import os
import time
from datetime import datetime
from pathlib import Path
from typing import Any

from openmeg.core.clock import Clock
from openmeg.core.site import Site
from openmeg.sim.bas_wire import BasServers, WireBas, building_plants
from openmeg.sim.live_plant import SimulatedPlant
from openmeg.sim.wire import DeviceServers, WireDevice

BUILDING_STEP_S = 300.0
"""How often the buildings' physics is played [s of the field's clock]: their thermal time
constants are hours; a write to a BAS plays them at the next step."""


class Field:
    """Every simulated device of ``site``, stepped every ``step_s`` of ``clock``.

    ``state_file`` keeps what must survive a restart of the field (states of charge, the heat
    store, energy counters, meter registers), written every ``persist_every_s`` and at stop.
    Each BAS answers BACnet/IP at its site file's address (``base_port=0``: a free port); ``only``
    names the devices and BAS to serve. The buildings' plants start afresh on a restart.
    """

    def __init__(
        self,
        site: Site,
        *,
        clock: Clock,
        step_s: float = 1.0,
        host: str = "127.0.0.1",
        base_port: int = 15020,
        horizon_h: float = 24.0,
        only: frozenset[str] | None = None,
        state_file: Path | None = None,
        persist_every_s: float = 60.0,
    ) -> None:
        self.site, self.clock, self.step_s = site, clock, step_s
        self.plant = SimulatedPlant(site, start=clock.now(), step_s=step_s, horizon_h=horizon_h)
        self.servers = DeviceServers(
            site, self.plant, now=lambda: self.plant.time, host=host, base_port=base_port, only=only
        )
        self.buildings = building_plants(site)
        self._building_s = 0.0  # the field's time since the buildings were last played [s]
        """The building plant behind each BAS, by the BAS's id."""
        self.bas = BasServers(site, self.buildings, host=host, free_ports=base_port == 0, only=only)
        self.state_file = state_file
        self._persist_every = max(1, round(persist_every_s / step_s))
        self.steps = 0
        self.load_steps: dict[str, float] = {}
        """Each load's last scenario step: the wall-clock time (epoch s) its meter changed."""
        self._stepping: list[str] = []
        self.reverted: list[tuple[datetime, str, str]] = []
        """``(time, device, control)`` of every control that reverted for want of a write."""
        if state_file is not None and state_file.exists():
            self.plant.restore(json.loads(state_file.read_text()))

    @property
    def plan(self) -> list[WireDevice]:
        return self.servers.plan

    async def start(self) -> list[WireDevice]:
        """Put every device and BAS on the wire; the devices' plan with the ports bound
        (``bas_plan`` the BAS's)."""
        plan = await self.servers.start()
        try:
            await self.bas.start()
        except BaseException:
            await self.servers.stop()
            raise
        return plan

    @property
    def bas_plan(self) -> list[WireBas]:
        """Where each BAS answers (the ports bound once started)."""
        return self.bas.plan

    def outdoor_temp_c(self) -> float:
        """The weather's air temperature [°C] of the step the plant played last."""
        engine = self.plant._engine
        k = min(max(engine.k - 1, 0), engine.plant.n_steps - 1)
        return float(engine.plant.weather.temp_air_c[k])

    def step(self) -> None:
        """One step of the physics, after the controls whose revert timeout ran out reverted."""
        for device, control in self.servers.revert_expired():
            self.reverted.append((self.plant.time, device, control))
        t = self.plant.time
        self.plant.step()
        self._building_s += self.step_s
        plants = self.buildings.values()
        due = self._building_s >= BUILDING_STEP_S or not self.steps
        if due or any(b.commanded for b in plants):
            outdoor_c = self.outdoor_temp_c()
            for building in plants:
                building.step(t, self._building_s, outdoor_c)
            self._building_s = 0.0
        for load in self._stepping:  # the step is in the registers from now on
            self.load_steps[load] = time.time()
        self._stepping.clear()
        self.steps += 1
        if self.steps % self._persist_every == 0:
            self.save()

    async def run(self, stop: asyncio.Event) -> None:
        """Step every ``step_s`` of the clock until ``stop`` is set."""
        while not stop.is_set():
            self.step()
            await self.clock.sleep(self.step_s)

    def step_load(self, load: str, kw: float) -> None:
        """A load step of ``kw`` on ``load`` from the next step (``KeyError`` if unknown)."""
        self.plant.add_load_kw(load, kw)
        self._stepping.append(load)

    def save(self) -> None:
        """Write the plant's state to ``state_file`` (owner-only), atomically."""
        if self.state_file is None:
            return
        state = {device: values for device, values in self.plant.state()}
        tmp = self.state_file.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            json.dump(state, f)
        tmp.replace(self.state_file)

    async def stop(self) -> None:
        self.save()
        await self.servers.stop()
        await self.bas.stop()

    def status(self) -> dict[str, Any]:
        """What the control interface reports: the field's time, mode, devices, and its
        network (the fault, the dark buses, every switching operation in order)."""
        image = self.plant.read()
        gear = self.plant.switchgear
        return {
            "network": {
                "fault": gear.fault,
                "dark_buses": gear.dark_bus_names(),
                "switching": [{"switch": s, "action": a} for s, a in gear.log],
            },
            "time": self.plant.time.isoformat(),
            "mode": int(image["pcc/mode"]),
            "utility_available": image["pcc/utility_available"],
            "steps": self.steps,
            "devices": [
                {
                    **w.as_dict(),
                    "writes": self.servers.devices[w.id].writes,
                    "refused": self.servers.devices[w.id].refused,
                    "silent": self.servers.devices[w.id].silent,
                }
                for w in self.plan
            ],
            "reverted": [
                {"time": t.isoformat(), "device": d, "control": c} for t, d, c in self.reverted
            ],
            "bas": self.bas.status(),
        }
