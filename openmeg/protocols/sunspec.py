"""SunSpec Modbus: model definitions, register layout, and the encoding of point values.

Model definitions come from pysunspec2's bundled JSON (the SunSpec Alliance's own), plus the
two vendor models of openmeg in ``sunspec_models/`` (64900 transfer switch, 64901 condition
sensor). Only a model's fixed top-level group is laid out (no repeating groups). A device's map
starts at 40000 with the marker ``SunS``; each model is ``ID, L, points``; ``0xFFFF, 0`` ends it.
"""

from __future__ import annotations

import json
import struct
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

from openmeg.core.errors import DeviceError

BASE_ADDRESS = 40000
MARKER = (0x5375, 0x6E53)  # "SunS"
END_MODEL = 0xFFFF
VENDOR_DIR = Path(__file__).resolve().parent / "sunspec_models"

NOT_IMPLEMENTED = {
    "int16": 0x8000,
    "uint16": 0xFFFF,
    "enum16": 0xFFFF,
    "bitfield16": 0xFFFF,
    "sunssf": 0x8000,
    "int32": 0x80000000,
    "uint32": 0xFFFFFFFF,
    "enum32": 0xFFFFFFFF,
    "bitfield32": 0xFFFFFFFF,
    "acc16": 0,
    "acc32": 0,
    "acc64": 0,
    "uint64": 0xFFFFFFFFFFFFFFFF,
    "count": 0,
    "pad": 0x8000,
}
_SIGNED = {"int16", "sunssf", "int32"}
_WIDTH = {
    "int16": 1,
    "uint16": 1,
    "enum16": 1,
    "bitfield16": 1,
    "sunssf": 1,
    "acc16": 1,
    "count": 1,
    "pad": 1,
    "int32": 2,
    "uint32": 2,
    "enum32": 2,
    "bitfield32": 2,
    "acc32": 2,
    "float32": 2,
    "uint64": 4,
    "acc64": 4,
}


@dataclass(frozen=True, kw_only=True, slots=True)
class PointDef:
    """One point of a model: where it sits (offset from the model's ID register) and its type."""

    name: str
    type: str
    size: int
    offset: int
    sf: str | None = None
    units: str = ""
    writable: bool = False
    symbols: tuple[tuple[str, int], ...] = ()


@dataclass(frozen=True, kw_only=True)
class ModelDef:
    """A SunSpec model: its id, name, length ``L`` (registers after ``ID`` and ``L``), points."""

    id: int
    name: str
    length: int
    points: dict[str, PointDef] = field(default_factory=dict)


def _definition_file(model_id: int) -> Path:
    vendor = VENDOR_DIR / f"model_{model_id}.json"
    if vendor.exists():
        return vendor
    import sunspec2

    return Path(sunspec2.__file__).resolve().parent / "models" / "json" / f"model_{model_id}.json"


@cache
def model_def(model_id: int) -> ModelDef:
    """The definition of SunSpec model ``model_id``; ``DeviceError`` when it is unknown."""
    path = _definition_file(model_id)
    try:
        group = json.loads(path.read_text())["group"]
    except (OSError, KeyError, ValueError) as err:
        raise DeviceError(f"SunSpec model {model_id} is not known (no definition)") from err
    points: dict[str, PointDef] = {}
    offset = 0
    for p in group["points"]:
        points[p["name"]] = PointDef(
            name=p["name"],
            type=p["type"],
            size=int(p.get("size", 1)),
            offset=offset,
            sf=p.get("sf") if isinstance(p.get("sf"), str) else None,
            units=p.get("units", ""),
            writable=p.get("access") == "RW",
            symbols=tuple((s["name"], int(s["value"])) for s in p.get("symbols", [])),
        )
        offset += int(p.get("size", 1))
    return ModelDef(id=model_id, name=group["name"], length=offset - 2, points=points)


def encode(point: PointDef, raw: int | str | None) -> list[int]:
    """Registers of a raw value (already divided by its scale factor); ``None``: not implemented."""
    if point.type == "string":
        data = (raw if isinstance(raw, str) else "").encode()[: point.size * 2]
        data = data.ljust(point.size * 2, b"\0")
        return list(struct.unpack(f">{point.size}H", data))
    if isinstance(raw, str):
        raise ValueError(f"{point.name} is a {point.type}, not a string")
    width = _WIDTH.get(point.type, point.size)
    value = NOT_IMPLEMENTED.get(point.type, 0) if raw is None else int(raw)
    if point.type in _SIGNED and value < 0:
        value += 1 << (16 * width)
    if not 0 <= value < (1 << (16 * width)):
        raise ValueError(f"{raw} does not fit {point.name} ({point.type})")
    return [(value >> (16 * (width - 1 - i))) & 0xFFFF for i in range(width)]


def decode(point: PointDef, registers: list[int]) -> int | str | None:
    """The raw value of a point from its registers; ``None`` when it is not implemented."""
    if point.type == "string":
        return struct.pack(f">{len(registers)}H", *registers).rstrip(b"\0").decode(errors="replace")
    value = 0
    for reg in registers:
        value = (value << 16) | (reg & 0xFFFF)
    accumulator = point.type in ("acc16", "acc32", "acc64", "count")
    if not accumulator and value == NOT_IMPLEMENTED.get(point.type):
        return None
    if point.type in _SIGNED and value >= 1 << (16 * len(registers) - 1):
        value -= 1 << (16 * len(registers))
    return value


def to_raw(value: float, sf: int) -> int:
    """An engineering value as the integer a register holds under scale factor ``sf``."""
    return round(value / 10.0**sf)


def from_raw(raw: int, sf: int) -> float:
    return raw * 10.0**sf


@dataclass(frozen=True, kw_only=True)
class ModelBlock:
    """One model as laid out in a device: its definition and the address of its ``ID``."""

    model: ModelDef
    address: int

    def address_of(self, point: str) -> int:
        return self.address + self.model.points[point].offset


def layout(model_ids: list[int], *, base: int = BASE_ADDRESS) -> tuple[list[ModelBlock], int]:
    """Where each model sits after the marker, and the address just past the end model."""
    address = base + 2
    blocks = []
    for mid in model_ids:
        model = model_def(mid)
        blocks.append(ModelBlock(model=model, address=address))
        address += model.length + 2
    return blocks, address + 2


class DeviceMap:
    """The SunSpec register map of one device, from ``base`` (40000) to its end model.

    Values are set and read in engineering units through each point's scale factor, which must
    be set first (``set_raw`` on the ``*_SF`` point).
    """

    def __init__(
        self,
        model_ids: list[int],
        *,
        base: int = BASE_ADDRESS,
        placed: tuple[list[int], int] | None = None,
    ) -> None:
        """``placed``: the addresses of the models and of the end model, as found on a device
        (models of unknown definition in between are left out of ``model_ids``)."""
        self.base = base
        if placed is None:
            self.blocks, end = layout(model_ids, base=base)
        else:
            addresses, end_address = placed
            self.blocks = [
                ModelBlock(model=model_def(m), address=a)
                for m, a in zip(model_ids, addresses, strict=True)
            ]
            end = end_address + 2
        self.registers = [0] * (end - base)
        self.registers[0:2] = MARKER
        for block in self.blocks:
            for p in block.model.points.values():
                if p.type != "string":
                    self._put(block.address + p.offset, encode(p, None))
            self._put(block.address, [block.model.id, block.model.length])
        self.registers[-2:] = [END_MODEL, 0]
        self._by_id = {b.model.id: b for b in self.blocks}

    def _put(self, address: int, regs: list[int]) -> None:
        i = address - self.base
        self.registers[i : i + len(regs)] = regs

    def block(self, model_id: int) -> ModelBlock:
        try:
            return self._by_id[model_id]
        except KeyError:
            raise DeviceError(f"the device serves no SunSpec model {model_id}") from None

    def _point(self, model_id: int, name: str) -> tuple[ModelBlock, PointDef]:
        block = self.block(model_id)
        try:
            return block, block.model.points[name]
        except KeyError:
            raise DeviceError(f"SunSpec model {model_id} has no point {name!r}") from None

    def set_raw(self, model_id: int, name: str, raw: int | str | None) -> None:
        block, p = self._point(model_id, name)
        self._put(block.address + p.offset, encode(p, raw))

    def raw(self, model_id: int, name: str) -> int | str | None:
        block, p = self._point(model_id, name)
        i = block.address + p.offset - self.base
        return decode(p, self.registers[i : i + p.size])

    def scale_factor(self, model_id: int, name: str) -> int:
        _, p = self._point(model_id, name)
        if p.sf is None:
            return 0
        sf = self.raw(model_id, p.sf)
        if not isinstance(sf, int):
            raise DeviceError(f"scale factor {p.sf} of model {model_id} is not implemented")
        return sf

    def set_value(self, model_id: int, name: str, value: float | None) -> None:
        """Store an engineering value (``None``: not implemented), clipped to the point's type."""
        if value is None or value != value:
            self.set_raw(model_id, name, None)
            return
        _, p = self._point(model_id, name)
        raw = to_raw(value, self.scale_factor(model_id, name))
        lo, hi = _RANGE.get(p.type, (None, None))
        if lo is not None and hi is not None:
            raw = min(max(raw, lo), hi)
        self.set_raw(model_id, name, raw)

    def value(self, model_id: int, name: str) -> float | None:
        raw = self.raw(model_id, name)
        if raw is None or isinstance(raw, str):
            return None
        return from_raw(raw, self.scale_factor(model_id, name))

    def point_at(self, address: int) -> tuple[ModelBlock, PointDef] | None:
        """The model block and point that register ``address`` belongs to, if any."""
        for block in self.blocks:
            if block.address <= address < block.address + block.model.length + 2:
                for p in block.model.points.values():
                    if block.address + p.offset <= address < block.address + p.offset + p.size:
                        return block, p
        return None

    def writable_runs(self) -> list[tuple[int, int, bool]]:
        """``(address, count, writable)`` runs covering the whole map."""
        flags = [False] * len(self.registers)
        for block in self.blocks:
            for p in block.model.points.values():
                if p.writable:
                    start = block.address + p.offset - self.base
                    flags[start : start + p.size] = [True] * p.size
        runs: list[tuple[int, int, bool]] = []
        for i, flag in enumerate(flags):
            if runs and runs[-1][2] == flag:
                a, n, f = runs[-1]
                runs[-1] = (a, n + 1, f)
            else:
                runs.append((self.base + i, 1, flag))
        return runs


_RANGE = {
    "int16": (-0x7FFF, 0x7FFF),
    "uint16": (0, 0xFFFE),
    "enum16": (0, 0xFFFE),
    "int32": (-0x7FFFFFFF, 0x7FFFFFFF),
    "uint32": (0, 0xFFFFFFFE),
    "acc32": (0, 0xFFFFFFFF),
    "acc16": (0, 0xFFFF),
    "bitfield16": (0, 0x7FFF),
}
