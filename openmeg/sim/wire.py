"""The simulated devices on the wire: each one a Modbus TCP slave on 127.0.0.1 serving SunSpec
models with live values from the simulated plant, and taking commands written to its controls.

DERs, condition sensors and the transfer switch have a port each (unit id 1); the meters sit
behind one gateway port, one unit id per meter, as on an RS-485 line behind a gateway.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, replace
from typing import Any, cast

from pymodbus.constants import ExcCodes
from pymodbus.server import ModbusTcpServer
from pymodbus.simulator import DataType, SimData, SimDevice

from openmeg.core.errors import CommandError
from openmeg.core.site import Site
from openmeg.der import sunspec_map as ssm
from openmeg.der.ratings import CHP, PV, Battery, FuelCell, Wind
from openmeg.der.wind_curves import library_curve
from openmeg.protocols.sunspec import BASE_ADDRESS, DeviceMap

ON_WIRE = ("pv", "wind", "chp", "fuel_cell", "battery", "sensor")
DEFAULT_SF = {
    "Hz_SF": -2,
    "V_SF": -1,
    "A_SF": -1,
    "VA_SF": 1,
    "VAr_SF": 1,
    "VAR_SF": 1,
    "PF_SF": -2,
    "WH_SF": 0,
    "Tmp_SF": -1,
    "TotWh_SF": 0,
    "WMaxLimPct_SF": -1,
    "InOutWRte_SF": -1,
    "ChaState_SF": -1,
    "MinRsvPct_SF": -1,
    "StorAval_SF": 0,
    "InBatV_SF": -1,
    "WChaDisChaGra_SF": 0,
    "VAChaMax_SF": 1,
    "OutPFSet_SF": -2,
    "VArPct_SF": -1,
    "Vib_SF": -2,
    "Noise_SF": -1,
    "DCA_SF": -1,
    "DCV_SF": -1,
    "DCW_SF": 1,
    "TotVAh_SF": 0,
    "TotVArh_SF": 0,
}


@dataclass(frozen=True, kw_only=True)
class WireDevice:
    """Where a device answers on the wire and what it serves."""

    id: str
    kind: str
    family: str
    host: str
    port: int
    unit: int
    models: tuple[int, ...]

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def wire_plan(
    site: Site,
    *,
    host: str = "127.0.0.1",
    base_port: int = 15020,
    only: frozenset[str] | None = None,
) -> list[WireDevice]:
    """Every device of ``site`` that is on the wire, with its address.

    Ports count up from ``base_port``; with ``base_port=0`` every server takes a free port
    when it starts (``DeviceServers.start`` tells which).
    """
    plan: list[WireDevice] = []

    def port(i: int) -> int:
        return 0 if base_port == 0 else base_port + i

    def add(device_id: str, kind: str, p: int, unit: int = 1) -> None:
        family = ssm.FAMILY_OF_KIND[kind]
        plan.append(
            WireDevice(
                id=device_id,
                kind=kind,
                family=family,
                host=host,
                port=p,
                unit=unit,
                models=ssm.MODELS[family],
            )
        )

    def wanted(device_id: str) -> bool:
        return only is None or device_id in only

    if wanted("pcc"):
        add("pcc", "transfer_switch", port(0))
    for d in site.devices:
        if d.kind in ON_WIRE and wanted(d.id):
            add(d.id, d.kind, port(len(plan)))
    gateway = port(len(plan))
    for unit, m in enumerate(site.meters, start=1):
        if wanted(m.id):
            add(m.id, "meter", gateway, unit)
    return plan


def _rating_w(site: Site, device_id: str) -> float:
    d = site.device(device_id)
    if isinstance(d, PV):
        return d.inverter_kw * 1000
    if isinstance(d, Wind):
        _, powers, nominal = library_curve(d.turbine_type)
        return max(powers) * ((d.rated_kw / nominal) if d.rated_kw else 1.0) * 1000
    if isinstance(d, CHP):
        return d.p_el_max_kw * 1000
    if isinstance(d, FuelCell):
        return d.p_max_kw * 1000
    if isinstance(d, Battery):
        return max(d.p_charge_max_kw, d.p_discharge_max_kw) * 1000
    return 500_000.0  # meters and the PCC: up to 500 kW at 10 W resolution would not fit int16


def power_sf(rating_w: float) -> int:
    """The smallest scale factor at which 1.2 times ``rating_w`` fits a signed 16-bit register."""
    sf = 0
    while rating_w * 1.2 / 10**sf > 32767:
        sf += 1
    return sf


class SimulatedDevice:
    """One device's SunSpec map, filled from the plant's process image on every read."""

    def __init__(self, site: Site, wire: WireDevice) -> None:
        self.site = site
        self.wire = wire
        self.map = DeviceMap(list(wire.models))
        self.rating_w = _rating_w(site, wire.id) if wire.kind in ON_WIRE else 500_000.0
        for block in self.map.blocks:
            for name, p in block.model.points.items():
                if p.type == "sunssf":
                    self.map.set_raw(block.model.id, name, DEFAULT_SF.get(name, 0))
        if ssm.METER in wire.models:
            self.map.set_raw(ssm.METER, "V_SF", 0)  # whole volts: LV and 20 kV both fit
        for model in (ssm.INVERTER, ssm.METER, ssm.TRANSFER_SWITCH):
            if model in wire.models:
                self.map.set_raw(model, "W_SF", power_sf(self.rating_w))
        if ssm.STORAGE in wire.models:
            self.map.set_raw(ssm.STORAGE, "WChaMax_SF", power_sf(self.rating_w))
            self.map.set_value(ssm.STORAGE, "WChaMax", self.rating_w)
        if ssm.CONTROLS in wire.models:
            self.map.set_value(ssm.CONTROLS, "WMaxLimPct", 100.0)
            self.map.set_raw(ssm.CONTROLS, "WMaxLim_Ena", 0)
            self.map.set_raw(ssm.CONTROLS, "Conn", 1)
        if ssm.TRANSFER_SWITCH in wire.models:
            switch = site.utility.transfer_switch
            self.map.set_raw(ssm.TRANSFER_SWITCH, "Typ", 1 if switch == "ats" else 2)
            self.map.set_raw(ssm.TRANSFER_SWITCH, "Cmd", 0)
        self.map.set_raw(ssm.COMMON, "Mn", "openmeg")
        self.map.set_raw(ssm.COMMON, "Md", f"simulated {wire.kind}")
        self.map.set_raw(ssm.COMMON, "Vr", "1.0")
        self.map.set_raw(ssm.COMMON, "SN", wire.id)
        self.map.set_raw(ssm.COMMON, "DA", wire.unit)

    def refresh(self, image: Mapping[str, float]) -> None:
        """Write the device's current values into its registers."""
        dev = self.wire.id
        f_hz = image.get("pcc/frequency_hz", math.nan)
        for m in ssm.POINT_MAP[self.wire.family]:
            if m.writable:
                continue
            if m.point == "frequency_hz":
                value = f_hz
            elif m.point == "switch_closed":
                value = 1.0 if image.get("pcc/mode", 0.0) == 0.0 else 0.0
            else:
                value = image.get(f"{dev}/{m.point}", math.nan)
            self.map.set_value(m.model, m.name, value / m.factor if value == value else None)
        if ssm.STORAGE in self.wire.models:
            p = image.get(f"{dev}/p_kw", 0.0)
            self.map.set_raw(ssm.STORAGE, "ChaSt", 3 if p > 0 else 4 if p < 0 else 6)
        if ssm.INVERTER in self.wire.models:
            p = image.get(f"{dev}/p_kw", 0.0)
            self.map.set_raw(ssm.INVERTER, "St", 4 if p != 0 else 8)

    def commands(self, address: int, values: list[int]) -> list[tuple[str, float]]:
        """The commands a write of ``values`` at ``address`` asks for; ``CommandError`` if any
        value is out of range (then nothing is written)."""
        trial = DeviceMap(list(self.wire.models))
        trial.registers = list(self.map.registers)
        start = address - BASE_ADDRESS
        trial.registers[start : start + len(values)] = values
        out: list[tuple[str, float]] = []
        touched = set()
        for i in range(len(values)):
            hit = self.map.point_at(address + i)
            if hit is not None:
                touched.add((hit[0].model.id, hit[1].name))
        if ssm.STORAGE in self.wire.models and touched & {
            (ssm.STORAGE, "OutWRte"),
            (ssm.STORAGE, "InWRte"),
            (ssm.STORAGE, "StorCtl_Mod"),
        }:
            vals = {n: trial.value(ssm.STORAGE, n) or 0.0 for n in ("OutWRte", "InWRte")}
            vals["StorCtl_Mod"] = float(trial.raw(ssm.STORAGE, "StorCtl_Mod") or 0)
            if not all(0.0 <= vals[n] <= 100.0 for n in ("OutWRte", "InWRte")):
                raise CommandError("storage rates are percent of WChaMax: 0 .. 100")
            out.append(("p_set_kw", ssm.storage_setpoint_kw(vals, self.rating_w)))
        for m in ssm.POINT_MAP[self.wire.family]:
            if not m.writable or (m.model, m.name) not in touched or m.point == "p_set_kw":
                continue
            value = trial.value(m.model, m.name)
            if (
                value is None
                or (m.low is not None and value < m.low)
                or (m.high is not None and value > m.high)
            ):
                raise CommandError(f"{m.name} = {value} is out of range {m.low} .. {m.high}")
            out.append((m.point, value * m.factor))
        self.map.registers = trial.registers
        return out


class DeviceServers:
    """The Modbus TCP servers of all simulated devices of a site."""

    def __init__(
        self,
        site: Site,
        image: Callable[[], Mapping[str, float]],
        command: Callable[[str, float], None],
        *,
        host: str = "127.0.0.1",
        base_port: int = 15020,
        only: frozenset[str] | None = None,
    ) -> None:
        self.site = site
        self._image = image
        self._command = command
        self.plan = wire_plan(site, host=host, base_port=base_port, only=only)
        self.devices = {w.id: SimulatedDevice(site, w) for w in self.plan}
        self._servers: list[ModbusTcpServer] = []

    def _sim_device(self, dev: SimulatedDevice) -> SimDevice:
        regs = dev.map.registers
        blocks = [
            SimData(
                address=a,
                values=regs[a - BASE_ADDRESS : a - BASE_ADDRESS + n],
                datatype=DataType.REGISTERS,
                readonly=not writable,
            )
            for a, n, writable in dev.map.writable_runs()
        ]

        async def action(
            function_code: int,
            start_address: int,
            address: int,
            count: int,
            registers: list[int],
            set_values: list[int] | list[bool] | None,
        ) -> ExcCodes | None:
            if set_values is None:
                dev.refresh(self._image())
                registers[: len(dev.map.registers)] = dev.map.registers
                return None
            try:
                for point, value in dev.commands(address, [int(v) for v in set_values]):
                    self._command(f"{dev.wire.id}/{point}", value)
            except CommandError:
                return ExcCodes.ILLEGAL_VALUE
            return None

        return SimDevice(id=dev.wire.unit, simdata=blocks, action=action)

    async def start(self) -> list[WireDevice]:
        """Start listening; return the plan with the ports actually bound."""
        by_port: dict[tuple[str, int, int], list[SimulatedDevice]] = {}
        for i, w in enumerate(self.plan):
            key = (w.host, w.port, i if w.port == 0 and w.kind != "meter" else -1)
            by_port.setdefault(key, []).append(self.devices[w.id])
        bound: dict[str, int] = {}
        for (host, port, _), devs in by_port.items():
            server = ModbusTcpServer([self._sim_device(d) for d in devs], address=(host, port))
            await server.serve_forever(background=True)
            self._servers.append(server)
            listener = cast(asyncio.Server, server.transport)
            actual = int(listener.sockets[0].getsockname()[1])
            for d in devs:
                bound[d.wire.id] = actual
        self.plan = [replace(w, port=bound[w.id]) for w in self.plan]
        for w in self.plan:
            self.devices[w.id].wire = w
        return self.plan

    async def stop(self) -> None:
        for server in self._servers:
            await server.shutdown()  # type: ignore[no-untyped-call]
        self._servers.clear()
