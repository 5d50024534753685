"""The simulated devices on the wire: each one a Modbus TCP slave serving SunSpec models with
live values from the simulated plant, and taking commands written to its controls.

Each device answers at the address its site file gives; a device without one is laid out on
127.0.0.1: DERs, condition sensors, the transfer switch and the network's line switches and
ties a port each (unit id 1), the meters behind one gateway port, one unit id per meter, as on
an RS-485 line behind a gateway.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, replace
from datetime import datetime, timedelta
from typing import Any, Protocol, cast

from pymodbus.constants import ExcCodes
from pymodbus.server import ModbusTcpServer
from pymodbus.simulator import DataType, SimData, SimDevice

from openmeg.core.errors import CommandError
from openmeg.core.site import Site
from openmeg.core.wiring import ON_WIRE_KINDS, on_wire
from openmeg.der import sunspec_map as ssm
from openmeg.der.ratings import CHP, PV, Battery, FuelCell, Wind
from openmeg.der.wind_curves import library_curve
from openmeg.protocols.sunspec import BASE_ADDRESS, DeviceMap

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
    "SoC_SF": -1,
    "Heat_SF": 1,
}
REVERT_OF_CONTROL = {
    "limit": (ssm.CONTROLS, "WMaxLimPct_RvrtTms"),
    "storage": (ssm.STORAGE, "InOutWRte_RvrtTms"),
}
"""The register holding each control's revert timeout (seconds; 0: the control never reverts)."""


class FieldPlant(Protocol):
    """What the devices on the wire need of the plant behind them."""

    def read(self) -> dict[str, float]: ...

    def command(self, point: str, value: float) -> None: ...

    def release_limit(self, device: str) -> None: ...


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
    server: str = ""
    """Devices with the same ``server`` are served by one Modbus TCP server (one port)."""

    def as_dict(self) -> dict[str, Any]:
        out = asdict(self)
        del out["server"]
        return out


def wire_plan(
    site: Site,
    *,
    host: str = "127.0.0.1",
    base_port: int = 15020,
    only: frozenset[str] | None = None,
) -> list[WireDevice]:
    """Every device of ``site`` that is on the wire (those in ``only``), with its address.

    A device the site file gives an address is served there: the site file wins. The others
    are served on ``host``, a port each counting up from ``base_port`` (the transfer switch
    first, then the devices), the meters behind one gateway port after them with unit ids
    1, 2, ... in the order of the site's meters; the count skips every port of the site file.
    With ``base_port=0`` every device is served on ``host`` at a free port taken when it starts
    (``DeviceServers.start`` tells which), the site file's addresses keeping their unit ids and
    which devices share a port.
    """
    wired = on_wire(site)
    taken = {w.address.port for w in wired if w.address is not None}
    unit_of_meter = {m.id: i for i, m in enumerate(site.meters, start=1)}
    counted = base_port
    gateway: int | None = None

    def fresh() -> int:
        nonlocal counted
        if base_port == 0:
            return 0
        while counted in taken:
            counted += 1
        counted += 1
        return counted - 1

    plan: list[WireDevice] = []
    for w in wired:
        if only is not None and w.id not in only:
            continue
        a = w.address
        if a is not None:
            at = (host, 0) if base_port == 0 else (a.host, a.port)
            server, unit = f"{a.host}:{a.port}", a.unit
        elif w.kind == "meter":
            gateway = fresh() if gateway is None else gateway
            at, server, unit = (host, gateway), "gateway", unit_of_meter[w.id]
        else:
            port = fresh()
            at, server, unit = (host, port), w.id, 1
        family = ssm.FAMILY_OF_KIND[w.kind]
        plan.append(
            WireDevice(
                id=w.id,
                kind=w.kind,
                family=family,
                host=at[0],
                port=at[1],
                unit=unit,
                models=ssm.MODELS[family],
                server=server if base_port == 0 else f"{at[0]}:{at[1]}",
            )
        )
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
    """One device's SunSpec map, filled from the plant's process image on every read; what is
    written into its controls it holds until its revert timeout runs out."""

    def __init__(self, site: Site, wire: WireDevice) -> None:
        self.site = site
        self.wire = wire
        self.map = DeviceMap(list(wire.models))
        self.rating_w = _rating_w(site, wire.id) if wire.kind in ON_WIRE_KINDS else 500_000.0
        self.writes = 0
        """Write requests this device accepted."""
        self.refused = 0
        """Write requests this device refused (exception 3)."""
        self.silent = False
        """A device that stops answering (a scenario of the field's control interface)."""
        self.log: deque[tuple[float, list[tuple[str, float]]]] = deque(maxlen=1000)
        """The commands its accepted writes carried, with the wall-clock time (epoch s)."""
        self._deadline: dict[str, datetime] = {}
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
            self._storage_idle()
        if ssm.CONTROLS in wire.models:
            self.map.set_value(ssm.CONTROLS, "WMaxLimPct", 100.0)
            self.map.set_raw(ssm.CONTROLS, "WMaxLim_Ena", 0)
            self.map.set_raw(ssm.CONTROLS, "Conn", 1)
            self.map.set_raw(ssm.CONTROLS, "WMaxLimPct_RvrtTms", 0)
        if ssm.TRANSFER_SWITCH in wire.models:
            switch = site.utility.transfer_switch
            self.map.set_raw(ssm.TRANSFER_SWITCH, "Typ", 1 if switch == "ats" else 2)
            self.map.set_raw(ssm.TRANSFER_SWITCH, "Cmd", 0)
        if ssm.LINE_SWITCH in wire.models:
            self.map.set_raw(ssm.LINE_SWITCH, "Cmd", 0)
        if ssm.HEAT_STORE in wire.models:
            capacity = getattr(site.device(wire.id), "capacity_kwh", 0.0)
            self.map.set_value(ssm.HEAT_STORE, "WHRtg", capacity * 1000.0)
        self.map.set_raw(ssm.COMMON, "Mn", "openmeg")
        self.map.set_raw(ssm.COMMON, "Md", f"simulated {wire.kind}")
        self.map.set_raw(ssm.COMMON, "Vr", "1.0")
        self.map.set_raw(ssm.COMMON, "SN", wire.id)
        self.map.set_raw(ssm.COMMON, "DA", wire.unit)

    def _storage_idle(self) -> None:
        self.map.set_raw(ssm.STORAGE, "StorCtl_Mod", 0)
        self.map.set_value(ssm.STORAGE, "OutWRte", 0.0)
        self.map.set_value(ssm.STORAGE, "InWRte", 0.0)
        self.map.set_raw(ssm.STORAGE, "InOutWRte_RvrtTms", 0)

    def refresh(self, image: Mapping[str, float]) -> None:
        """Write the device's current values into its registers."""
        dev = self.wire.id
        f_hz = image.get("pcc/frequency_hz", math.nan)
        for m in ssm.POINT_MAP[self.wire.family]:
            if m.writable:
                continue
            if m.point == "frequency_hz":
                value = f_hz
            elif m.point == "switch_closed" and self.wire.family == "transfer_switch":
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

    def commands(self, address: int, values: list[int], now: datetime) -> list[tuple[str, float]]:
        """The commands a write of ``values`` at ``address`` asks for (``p_limit_pct`` NaN: the
        limit is no longer enabled); ``CommandError`` if any value is out of range (then nothing
        is written)."""
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
        held: list[str] = []
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
            held.append("storage")
        limit_touched = touched & {(ssm.CONTROLS, "WMaxLimPct"), (ssm.CONTROLS, "WMaxLim_Ena")}
        for m in ssm.POINT_MAP[self.wire.family]:
            if not m.writable or (m.model, m.name) not in touched or m.point == "p_set_kw":
                continue
            if m.point == "p_limit_pct":
                continue  # below, with its enable
            value = trial.value(m.model, m.name)
            if (
                value is None
                or (m.low is not None and value < m.low)
                or (m.high is not None and value > m.high)
            ):
                raise CommandError(f"{m.name} = {value} is out of range {m.low} .. {m.high}")
            out.append((m.point, value * m.factor))
        if limit_touched and ssm.CONTROLS in self.wire.models:
            pct = trial.value(ssm.CONTROLS, "WMaxLimPct")
            if pct is None or not 0.0 <= pct <= 100.0:
                raise CommandError(f"WMaxLimPct = {pct} is out of range 0 .. 100")
            enabled = trial.raw(ssm.CONTROLS, "WMaxLim_Ena") == 1
            out.append(("p_limit_pct", pct if enabled else math.nan))
            held.append("limit")
        self.map.registers = trial.registers
        for control in held:
            model, name = REVERT_OF_CONTROL[control]
            seconds = self.map.raw(model, name)
            if isinstance(seconds, int) and seconds > 0:
                self._deadline[control] = now + timedelta(seconds=seconds)
            else:
                self._deadline.pop(control, None)
        return out

    def expired(self, now: datetime) -> list[str]:
        """The controls whose revert timeout ran out without a new write; they are reset in
        the registers (limit not enabled, storage idle) and no longer held."""
        gone = [c for c, due in self._deadline.items() if now >= due]
        for control in gone:
            del self._deadline[control]
            if control == "limit":
                self.map.set_raw(ssm.CONTROLS, "WMaxLim_Ena", 0)
                self.map.set_value(ssm.CONTROLS, "WMaxLimPct", 100.0)
            else:
                self._storage_idle()
        return gone


class DeviceServers:
    """The Modbus TCP servers of all simulated devices of a site."""

    def __init__(
        self,
        site: Site,
        plant: FieldPlant,
        *,
        now: Callable[[], datetime],
        host: str = "127.0.0.1",
        base_port: int = 15020,
        only: frozenset[str] | None = None,
    ) -> None:
        self.site = site
        self._plant = plant
        self._now = now
        self.plan = wire_plan(site, host=host, base_port=base_port, only=only)
        self.devices = {w.id: SimulatedDevice(site, w) for w in self.plan}
        self._servers: dict[tuple[str, int], ModbusTcpServer] = {}
        self._units: dict[tuple[str, int], list[SimulatedDevice]] = {}

    def _apply(self, dev: SimulatedDevice, commands: list[tuple[str, float]]) -> None:
        for point, value in commands:
            if point == "p_limit_pct" and value != value:
                self._plant.release_limit(dev.wire.id)
            else:
                self._plant.command(f"{dev.wire.id}/{point}", value)

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
            if dev.silent:
                return ExcCodes.GATEWAY_NO_RESPONSE
            if set_values is None:
                dev.refresh(self._plant.read())
                registers[: len(dev.map.registers)] = dev.map.registers
                return None
            try:
                commands = dev.commands(address, [int(v) for v in set_values], self._now())
                self._apply(dev, commands)
            except CommandError:
                dev.refused += 1
                return ExcCodes.ILLEGAL_VALUE
            dev.writes += 1
            if commands:
                dev.log.append((time.time(), commands))
            return None

        return SimDevice(id=dev.wire.unit, simdata=blocks, action=action)

    def revert_expired(self) -> list[tuple[str, str]]:
        """Reset every control whose revert timeout ran out: ``(device, control)`` pairs."""
        now = self._now()
        out = []
        for dev in self.devices.values():
            for control in dev.expired(now):
                if control == "limit":
                    self._plant.release_limit(dev.wire.id)
                else:
                    self._plant.command(f"{dev.wire.id}/p_set_kw", 0.0)
                out.append((dev.wire.id, control))
        return out

    async def start(self) -> list[WireDevice]:
        """Start listening; return the plan with the ports actually bound."""
        by_server: dict[tuple[str, int, str], list[SimulatedDevice]] = {}
        for w in self.plan:
            by_server.setdefault((w.host, w.port, w.server), []).append(self.devices[w.id])
        bound: dict[str, int] = {}
        for (host, port, _), devs in by_server.items():
            actual = await self._serve(host, port, devs)
            for d in devs:
                bound[d.wire.id] = actual
        self.plan = [replace(w, port=bound[w.id]) for w in self.plan]
        for w in self.plan:
            self.devices[w.id].wire = w
        return self.plan

    async def _serve(self, host: str, port: int, devs: list[SimulatedDevice]) -> int:
        server = ModbusTcpServer([self._sim_device(d) for d in devs], address=(host, port))
        await server.serve_forever(background=True)
        listener = cast(asyncio.Server, server.transport)
        actual = int(listener.sockets[0].getsockname()[1])
        self._servers[(host, actual)] = server
        self._units[(host, actual)] = devs
        return actual

    async def silence(self, device: str) -> None:
        """The device stops answering: a device with a port of its own closes it (connections
        refused), one behind a gateway leaves the gateway without an answer (exception 11)."""
        dev = self._device(device)
        at = (dev.wire.host, dev.wire.port)
        if len(self._units.get(at, [])) == 1 and at in self._servers:
            await self._servers.pop(at).shutdown()  # type: ignore[no-untyped-call]
        dev.silent = True

    async def answer(self, device: str) -> None:
        """The device answers again."""
        dev = self._device(device)
        dev.silent = False
        at = (dev.wire.host, dev.wire.port)
        if at not in self._servers:
            await self._serve(*at, self._units[at])

    def _device(self, device: str) -> SimulatedDevice:
        try:
            return self.devices[device]
        except KeyError:
            known = ", ".join(sorted(self.devices))
            raise CommandError(f"no device {device!r} on the wire; devices: {known}") from None

    async def stop(self) -> None:
        for server in self._servers.values():
            await server.shutdown()  # type: ignore[no-untyped-call]
        self._servers.clear()
