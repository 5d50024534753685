"""A SunSpec device for tests: a Modbus TCP slave on 127.0.0.1 (pymodbus) serving any list of
models, laid out and encoded by pysunspec2 itself (``sunspec2.device.Model``), not by openmeg.

Values are given as pysunspec2 takes them (raw, before scale factors; repeating groups as
lists): ``SunSpecDevice([(1, {"SN": "inv-1"}), (160, {"N": 2, "module": [{...}, {...}]})])``.
The device keeps the registers written to it and counts the write requests, so a test can read
a setpoint back from the device's own registers.
"""

from __future__ import annotations

import asyncio
import copy
import json
import re
from collections.abc import Iterator, Sequence
from types import TracebackType
from typing import Any, cast

from pymodbus.constants import ExcCodes
from pymodbus.server import ModbusTcpServer
from pymodbus.simulator import DataType, SimData, SimDevice
from sunspec2 import device as ss_device
from sunspec2 import mdef

from openmeg.protocols.sunspec_model import definition_file

BASE = 40000
MARKER = [0x5375, 0x6E53]


def _definition(model_id: int) -> dict[str, Any]:
    with definition_file(model_id).open() as f:
        d = json.load(f)
    ss_device.add_mappings(d[mdef.GROUP])
    return cast(dict[str, Any], d)


def _points(group: Any) -> Iterator[Any]:
    yield from group.points.values()
    for g in group.groups.values():
        for instance in g if isinstance(g, list) else [g]:
            yield from _points(instance)


class SunSpecDevice:
    """A SunSpec slave on 127.0.0.1: ``await start()`` (or ``async with``), then ``port``."""

    def __init__(
        self, models: Sequence[tuple[int, dict[str, Any]]], *, unit: int = 1, base: int = BASE
    ) -> None:
        self.unit, self.base = unit, base
        self.models: list[tuple[int, Any]] = []  # (address of ID, pysunspec2 model)
        self.registers = list(MARKER)
        self.writable = [False, False]
        for model_id, values in models:
            model = ss_device.Model(
                model_id=model_id, model_def=_definition(model_id), data=copy.deepcopy(values)
            )
            if model.error_info:
                raise ValueError(f"model {model_id}: {model.error_info}")
            data = model.get_mb()
            regs = [int.from_bytes(data[i : i + 2], "big") for i in range(0, len(data), 2)]
            address = base + len(self.registers)
            self.models.append((address, model))
            flags = [False] * len(regs)
            for p in _points(model):
                if p.pdef.get(mdef.ACCESS) == mdef.ACCESS_RW:
                    flags[p.offset : p.offset + p.len] = [True] * p.len
            self.registers += regs
            self.writable += flags
        self.registers += [0xFFFF, 0]
        self.writable += [False, False]
        self.writes: list[tuple[int, list[int]]] = []
        self.port = 0
        self._server: ModbusTcpServer | None = None

    def address(self, model_id: int, path: str, instance: int = 0) -> int:
        """Where pysunspec2 put point ``path`` (``module[1].DCA``) of ``model_id``."""
        address, group = [(a, m) for a, m in self.models if m.model_id == model_id][instance]
        *groups, name = path.split(".")
        for part in groups:
            m = re.fullmatch(r"(\w+)(?:\[(\d+)\])?", part)
            assert m is not None, part
            group = group.groups[m.group(1)]
            if m.group(2) is not None:
                group = group[int(m.group(2))]
        return int(address + group.points[name].offset)

    def read(self, address: int, count: int = 1) -> list[int]:
        """The device's own registers (as written by the master)."""
        return self.registers[address - self.base : address - self.base + count]

    def _blocks(self) -> list[SimData]:
        blocks: list[SimData] = []
        start = 0
        for i in range(1, len(self.registers) + 1):
            if i == len(self.registers) or self.writable[i] != self.writable[start]:
                blocks.append(
                    SimData(
                        address=self.base + start,
                        values=self.registers[start:i],
                        datatype=DataType.REGISTERS,
                        readonly=not self.writable[start],
                    )
                )
                start = i
        return blocks

    async def _action(
        self,
        function_code: int,
        start_address: int,
        address: int,
        count: int,
        registers: list[int],
        set_values: list[int] | list[bool] | None,
    ) -> ExcCodes | None:
        offset = self.base - start_address
        if set_values is None:
            registers[offset : offset + len(self.registers)] = self.registers
            return None
        values = [int(v) for v in set_values]
        self.writes.append((address, values))
        i = address - self.base
        self.registers[i : i + len(values)] = values
        return None

    async def start(self) -> SunSpecDevice:
        device = SimDevice(id=self.unit, simdata=self._blocks(), action=self._action)
        self._server = ModbusTcpServer(device, address=("127.0.0.1", 0))
        await self._server.serve_forever(background=True)
        listener = cast(asyncio.Server, self._server.transport)
        self.port = int(listener.sockets[0].getsockname()[1])
        return self

    async def stop(self) -> None:
        if self._server is not None:
            await self._server.shutdown()  # type: ignore[no-untyped-call]
            self._server = None

    async def __aenter__(self) -> SunSpecDevice:
        return await self.start()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()


# example devices: raw values as pysunspec2 takes them
COMMON = {"Mn": "acme", "Md": "test", "Vr": "1.0", "DA": 1}

SINGLE_PHASE = [
    (1, {**COMMON, "SN": "sp-0042"}),
    (
        101,
        {
            "A": 217,
            "AphA": 217,
            "A_SF": -1,
            "PhVphA": 2301,
            "V_SF": -1,
            "W": 4990,
            "W_SF": 0,
            "Hz": 5002,
            "Hz_SF": -2,
            "WH": 123456,
            "WH_SF": 0,
            "TmpCab": 412,
            "Tmp_SF": -1,
            "St": 4,
            "Evt1": 0,
            "Evt2": 0,
        },
    ),
    (120, {"DERTyp": 4, "WRtg": 500, "WRtg_SF": 1, "VARtg": 500, "VARtg_SF": 1}),
    (
        123,
        {
            "Conn": 1,
            "WMaxLimPct": 1000,
            "WMaxLimPct_RvrtTms": 0,
            "WMaxLim_Ena": 0,
            "OutPFSet": 100,
            "OutPFSet_Ena": 0,
            "VArPct_Ena": 0,
            "WMaxLimPct_SF": -1,
            "OutPFSet_SF": -2,
        },
    ),
]

BATTERY_700 = [
    (1, {**COMMON, "SN": "bat-7"}),
    (
        701,
        {
            "ACType": 0,
            "W": -125,
            "W_SF": 2,
            "Hz": 5000,
            "Hz_SF": -2,
            "LNV": 2300,
            "V_SF": -1,
            "TotWhInj": 987654,
            "TotWhAbs": 1234567,
            "TotWh_SF": 0,
            "TmpCab": 305,
            "Tmp_SF": -1,
        },
    ),
    (
        702,
        {
            "WMaxRtg": 5000,
            "WMax": 5000,
            "WChaRteMaxRtg": 4000,
            "WDisChaRteMaxRtg": 4500,
            "WChaRteMax": 4000,
            "WDisChaRteMax": 4500,
            "PFOvrExtRtg": 80,
            "PFUndExtRtg": 85,
            "W_SF": 1,
            "PF_SF": -2,
        },
    ),
    (
        704,
        {
            "PFWInjEna": 0,
            "PFWInjEnaRvrt": 0,
            "PFWInjRvrtTms": 0,
            "WMaxLimPctEna": 0,
            "WMaxLimPct": 1000,
            "WMaxLimPctRvrt": 1000,
            "WMaxLimPctEnaRvrt": 0,
            "WMaxLimPctRvrtTms": 0,
            "WSetEna": 0,
            "WSetMod": 1,
            "WSet": 0,
            "WSetRvrt": 0,
            "WSetPct": 0,
            "WSetEnaRvrt": 0,
            "WSetRvrtTms": 0,
            "PF_SF": -2,
            "WMaxLimPct_SF": -1,
            "WSet_SF": 1,
            "WSetPct_SF": -1,
            "PFWInj": {"PF": 100, "Ext": 0},
        },
    ),
    (
        802,
        {
            "AHRtg": 200,
            "WHRtg": 1000,
            "WChaRteMax": 400,
            "WDisChaRteMax": 450,
            "SoC": 6250,
            "LocRemCtl": 0,
            "Typ": 4,
            "State": 3,
            "V": 520,
            "A": -24,
            "W": -125,
            "SetOp": 1,
            "SetInvState": 3,
            "AlmRst": 0,
            "AHRtg_SF": 0,
            "WHRtg_SF": 2,
            "WChaDisChaMax_SF": 2,
            "SoC_SF": -2,
            "V_SF": 0,
            "CellV_SF": -3,
            "A_SF": 0,
            "AMax_SF": 0,
            "W_SF": 2,
        },
    ),
]

MODULES = [
    {"ID": 1, "IDStr": "string A", "DCA": 812, "DCV": 3805, "DCW": 3090, "DCWH": 45678, "DCSt": 4},
    {"ID": 2, "IDStr": "string B", "DCA": 799, "DCV": 3790, "DCW": 3028, "DCWH": 44321, "DCSt": 4},
]
WITH_MPPT = [
    *SINGLE_PHASE[:2],
    (160, {"DCA_SF": -2, "DCV_SF": -1, "DCW_SF": 0, "DCWH_SF": 0, "N": 2, "module": MODULES}),
]

STORAGE_124 = [
    (1, {**COMMON, "SN": "bess-124"}),
    (103, {"W": -600, "W_SF": 2, "Hz": 5000, "Hz_SF": -2, "St": 4, "Evt1": 0, "Evt2": 0}),
    (
        124,
        {
            "WChaMax": 1500,
            "WChaMax_SF": 2,
            "WChaGra": 100,
            "WDisChaGra": 100,
            "WChaDisChaGra_SF": 0,
            "StorCtl_Mod": 0,
            "ChaState": 500,
            "ChaState_SF": -1,
            "OutWRte": 0,
            "InWRte": 0,
            "InOutWRte_RvrtTms": 0,
            "InOutWRte_SF": -1,
        },
    ),
]
