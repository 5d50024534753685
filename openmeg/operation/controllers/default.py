"""The default controllers: self-consumption of batteries and a heat-led CHP.

Each holds a device whose inputs are stale or missing at its safe setpoint (a battery idle, a
CHP off) and says why, instead of acting on what it does not know.
"""

from __future__ import annotations

from dataclasses import dataclass

from openmeg.der.operating_modes import heat_led_chp_request_kw, self_consumption_request_kw
from openmeg.operation.cycle import ProcessImage, Proposal
from openmeg.operation.process_image import StalePoint

SAFE_SETPOINT_KW = 0.0
"""A held battery idles; a held CHP stops."""


@dataclass(frozen=True, kw_only=True)
class BatteryTarget:
    """A battery, the meter whose net demand it serves (``pcc`` for the community's) and the
    state of charge it keeps for outages while grid-connected (0: no reserve)."""

    battery: str
    meter: str
    reserve_soc: float = 0.0


@dataclass(kw_only=True)
class SelfConsumption:
    """Each battery covers the deficit, or absorbs the surplus, seen at its meter, keeping its
    outage reserve while the MEG is grid-connected."""

    targets: list[BatteryTarget]
    priority: int
    name: str = "self_consumption"

    def run(self, image: ProcessImage) -> Proposal:
        out = Proposal()
        try:
            grid_connected = image["pcc/mode"] == 0.0
        except StalePoint:
            grid_connected = True  # not known to be islanded: the outage reserve stays
        for t in self.targets:
            key = f"{t.battery}/p_set_kw"
            try:
                # the meter sees demand net of the battery's own output: add it back
                net = image[f"{t.meter}/import_kw"] + image[f"{t.battery}/p_kw"]
                soc = image[f"{t.battery}/soc"]
            except StalePoint as err:
                out.setpoints[key] = SAFE_SETPOINT_KW
                out.holds[t.battery] = str(err)
                continue
            out.setpoints[key] = self_consumption_request_kw(
                net, soc, t.reserve_soc, grid_connected
            )
        return out


@dataclass(frozen=True, kw_only=True)
class ChpUnit:
    chp: str
    heat_storage: str
    eta_el: float
    eta_th: float
    p_min_kw: float
    p_max_kw: float
    heat_capacity_kwh: float


@dataclass(kw_only=True)
class HeatLedChp:
    """Each CHP follows the heat its store needs (hysteresis on the store's state of charge)."""

    units: list[ChpUnit]
    priority: int
    name: str = "heat_led_chp"

    def run(self, image: ProcessImage) -> Proposal:
        out = Proposal()
        for u in self.units:
            key = f"{u.chp}/p_set_kw"
            try:
                running = image[f"{u.chp}/p_kw"] > 0.0
                soc = image[f"{u.heat_storage}/soc"]
                demand_kw = image[f"{u.heat_storage}/heat_demand_kw"]
            except StalePoint as err:
                out.setpoints[key] = SAFE_SETPOINT_KW
                out.holds[u.chp] = str(err)
                continue
            out.setpoints[key] = heat_led_chp_request_kw(
                running,
                soc,
                demand_kw,
                u.heat_capacity_kwh,
                u.eta_el,
                u.eta_th,
                u.p_min_kw,
                u.p_max_kw,
            )
        return out
