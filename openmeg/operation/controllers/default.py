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
    """A battery, the meter whose net demand it serves (``pcc`` for the community's), the
    state of charge it keeps for outages while grid-connected (0: no reserve), and its rating
    (kW), by which batteries behind the same meter share its net demand."""

    battery: str
    meter: str
    reserve_soc: float = 0.0
    rating_kw: float = 1.0


@dataclass(kw_only=True)
class SelfConsumption:
    """The batteries behind each meter cover the deficit, or absorb the surplus, seen there,
    shared by their ratings, each keeping its outage reserve while the MEG is grid-connected.

    A battery whose own values are stale is held idle (its last known output still counts in
    its meter's balance); a meter whose reading is stale holds all its batteries."""

    targets: list[BatteryTarget]
    priority: int
    name: str = "self_consumption"

    def run(self, image: ProcessImage) -> Proposal:
        out = Proposal()
        try:
            grid_connected = image["pcc/mode"] == 0.0
        except StalePoint:
            grid_connected = True  # not known to be islanded: the outage reserve stays
        by_meter: dict[str, list[BatteryTarget]] = {}
        for t in self.targets:
            by_meter.setdefault(t.meter, []).append(t)
        for meter, targets in by_meter.items():
            self._share(image, meter, targets, grid_connected, out)
        return out

    @staticmethod
    def _share(
        image: ProcessImage,
        meter: str,
        targets: list[BatteryTarget],
        grid_connected: bool,
        out: Proposal,
    ) -> None:
        live: list[tuple[BatteryTarget, float]] = []  # (target, soc)
        own_kw = 0.0  # the batteries' output the meter sees: added back to its reading
        for t in targets:
            try:
                p_kw, soc = image[f"{t.battery}/p_kw"], image[f"{t.battery}/soc"]
            except StalePoint as err:
                out.setpoints[f"{t.battery}/p_set_kw"] = SAFE_SETPOINT_KW
                out.holds[t.battery] = str(err)
                last = image.sample(f"{t.battery}/p_kw")
                own_kw += last.value if last is not None and last.value == last.value else 0.0
                continue
            own_kw += p_kw
            live.append((t, soc))
        try:
            net = image[f"{meter}/import_kw"] + own_kw
        except StalePoint as err:
            for t, _ in live:
                out.setpoints[f"{t.battery}/p_set_kw"] = SAFE_SETPOINT_KW
                out.holds[t.battery] = str(err)
            return
        total = sum(t.rating_kw for t, _ in live)
        for t, soc in live:
            share = net * t.rating_kw / total
            out.setpoints[f"{t.battery}/p_set_kw"] = self_consumption_request_kw(
                share, soc, t.reserve_soc, grid_connected
            )


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
