"""The default controllers: self-consumption of batteries and a heat-led CHP."""

from __future__ import annotations

from dataclasses import dataclass

from openmeg.der.operating_modes import heat_led_chp_request_kw, self_consumption_request_kw
from openmeg.operation.cycle import ProcessImage


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

    def run(self, image: ProcessImage) -> dict[str, float]:
        out = {}
        grid_connected = image["pcc/mode"] == 0.0
        for t in self.targets:
            # the meter sees demand net of the battery's own output: add it back
            net = image[f"{t.meter}/import_kw"] + image[f"{t.battery}/p_kw"]
            out[f"{t.battery}/p_set_kw"] = self_consumption_request_kw(
                net, image[f"{t.battery}/soc"], t.reserve_soc, grid_connected
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

    def run(self, image: ProcessImage) -> dict[str, float]:
        out = {}
        for u in self.units:
            out[f"{u.chp}/p_set_kw"] = heat_led_chp_request_kw(
                image[f"{u.chp}/on"] > 0.5,
                image[f"{u.heat_storage}/soc"],
                image[f"{u.heat_storage}/heat_demand_kw"],
                u.heat_capacity_kwh,
                u.eta_el,
                u.eta_th,
                u.p_min_kw,
                u.p_max_kw,
            )
        return out
