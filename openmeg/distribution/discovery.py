"""SunSpec discovery (Y.2071 R4): given only host, port and unit id, find the SunSpec marker, walk
the model chain and build the device's point map, so a new device needs no configuration."""

from __future__ import annotations

import re
from dataclasses import dataclass

from openmeg.core.errors import DeviceError
from openmeg.der import sunspec_map as ssm
from openmeg.protocols.modbus import MAX_READ, ModbusMaster
from openmeg.protocols.sunspec import END_MODEL, MARKER, DeviceMap, ModelBlock, known, model_def

SEARCH_BASES = (40000, 0, 50000)
"""Where the SunSpec specification lets a map start."""


@dataclass(frozen=True, kw_only=True, slots=True)
class PointAddress:
    """Where one of our points lives on a device, and how to turn registers into its value."""

    point: str
    model: int
    name: str
    address: int
    size: int
    type: str
    sf_address: int | None
    factor: float
    writable: bool
    low: float | None
    high: float | None


@dataclass(frozen=True, kw_only=True)
class Discovered:
    """A device as discovery found it."""

    id: str
    family: str
    master: ModbusMaster
    base: int
    models: tuple[ModelBlock, ...]
    manufacturer: str
    model_name: str
    points: tuple[PointAddress, ...]
    map: DeviceMap

    def point(self, name: str) -> PointAddress:
        for p in self.points:
            if p.point == name:
                return p
        raise KeyError(f"device {self.id!r} has no point {name!r}")


def device_id_of(serial: str, fallback: str) -> str:
    """A device id from a serial number: letters, digits, '-', '_' and '.' only."""
    cleaned = re.sub(r"[^A-Za-z0-9_.\-]", "-", serial.strip()).strip("-.")
    return cleaned[:64] or fallback


async def _find_base(master: ModbusMaster) -> int:
    for base in SEARCH_BASES:
        try:
            if tuple(await master.read(base, 2)) == MARKER:
                return base
        except DeviceError:
            if not master.connected:
                raise
    raise DeviceError(
        f"{master.address} is no SunSpec device: no 'SunS' marker at "
        f"{', '.join(map(str, SEARCH_BASES))}"
    )


async def discover(master: ModbusMaster) -> Discovered:
    """Walk the device's SunSpec model chain and map its points to openmeg's."""
    base = await _find_base(master)
    chain: list[int] = []
    addresses: list[int] = []
    address = base + 2
    while True:
        model_id, length = await master.read(address, 2)
        if model_id == END_MODEL:
            break
        addresses.append(address)
        definition = model_def(model_id) if known(model_id) else None
        if definition is not None and definition.length != length:
            raise DeviceError(
                f"{master.address}: model {model_id} at {address} says L={length}, "
                f"its definition {definition.length}"
            )
        chain.append(model_id)
        address += 2 + length
        if address > base + 65535 or len(chain) > 100:
            raise DeviceError(f"{master.address}: the SunSpec model chain has no end model")
    served = [
        ModelBlock.at(model_def(m), a) for m, a in zip(chain, addresses, strict=True) if known(m)
    ]
    dmap = DeviceMap.placed(served, base=base, end=address)
    for block in dmap.blocks:
        regs: list[int] = []
        size = block.model.length + 2
        for start in range(0, size, MAX_READ):
            regs += await master.read(block.address + start, min(MAX_READ, size - start))
        dmap.registers[block.address - base : block.address - base + size] = regs
    family = ssm.family_of_models(tuple(chain))
    serial = dmap.raw(ssm.COMMON, "SN")
    manufacturer = dmap.raw(ssm.COMMON, "Mn")
    model_name = dmap.raw(ssm.COMMON, "Md")
    points = []
    for m in ssm.POINT_MAP[family]:
        block = dmap.block(m.model)
        p = block.model.points[m.name]
        if not m.writable and dmap.raw(m.model, m.name) is None:
            continue  # SunSpec: a point the device does not implement always reads so
        sf_address = block.address_of(p.sf) if p.sf else None
        points.append(
            PointAddress(
                point=m.point,
                model=m.model,
                name=m.name,
                address=block.address + p.offset,
                size=p.size,
                type=p.type,
                sf_address=sf_address,
                factor=m.factor,
                writable=m.writable,
                low=m.low,
                high=m.high,
            )
        )
    return Discovered(
        id=device_id_of(str(serial or ""), master.address.replace(":", "-")),
        family=family,
        master=master,
        base=base,
        models=tuple(dmap.blocks),
        manufacturer=str(manufacturer or ""),
        model_name=str(model_name or ""),
        points=tuple(points),
        map=dmap,
    )
