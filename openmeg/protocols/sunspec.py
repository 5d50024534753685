"""SunSpec Modbus: a device's register map, laid out from pysunspec2's model definitions.

A map starts at 40000 (or 0, or 50000) with the marker ``SunS``; each model is ``ID, L,
points``, its repeating groups laid out as many times as their counts say; ``0xFFFF, 0`` ends
it. Definitions and layout are in ``sunspec_model``, the encoding of values in
``sunspec_codec``; this module holds the map of one device and re-exports both.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from openmeg.core.errors import DeviceError
from openmeg.protocols.sunspec_codec import (
    RANGE,
    RawValue,
    decode_raw,
    encode_raw,
    from_raw,
    is_float,
    to_raw,
)
from openmeg.protocols.sunspec_model import (
    VENDOR_DIR,
    Counts,
    GroupDef,
    ModelDef,
    PointDef,
    known,
    model_def,
    place_points,
)

__all__ = [
    "BASE_ADDRESS",
    "END_MODEL",
    "MARKER",
    "VENDOR_DIR",
    "DeviceMap",
    "GroupDef",
    "ModelBlock",
    "ModelDef",
    "PointDef",
    "RawValue",
    "decode",
    "decode_raw",
    "encode",
    "from_raw",
    "known",
    "layout",
    "model_def",
    "to_raw",
]

BASE_ADDRESS = 40000
MARKER = (0x5375, 0x6E53)  # "SunS"
END_MODEL = 0xFFFF


def encode(point: PointDef, raw: RawValue) -> list[int]:
    """Registers of a raw value (already divided by its scale factor); ``None``: not implemented."""
    try:
        return encode_raw(point.type, point.size, raw)
    except ValueError as err:
        raise ValueError(f"{point.name}: {err}") from None


def decode(point: PointDef, registers: list[int]) -> RawValue:
    """The raw value of a point from its registers; ``None`` when it is not implemented."""
    return decode_raw(point.type, registers)


@dataclass(frozen=True, kw_only=True)
class ModelBlock:
    """One model as laid out in a device: its definition, the address of its ``ID``, the counts
    of its repeating groups, its length ``L`` and every point by path."""

    model: ModelDef
    address: int
    counts: Mapping[str, int]
    length: int
    points: Mapping[str, PointDef]

    @classmethod
    def at(cls, model: ModelDef, address: int, counts: Counts | int | None = None) -> ModelBlock:
        """``model`` at ``address`` with ``counts`` instances of its repeating groups."""
        resolved = model.counts(counts)
        return cls(
            model=model,
            address=address,
            counts=resolved,
            length=model.length_with(resolved),
            points=place_points(model, resolved),
        )

    @property
    def end(self) -> int:
        """The address just past the model."""
        return self.address + self.length + 2

    def point(self, path: str) -> PointDef:
        try:
            return self.points[path]
        except KeyError:
            raise DeviceError(
                f"SunSpec model {self.model.id} ({self.model.name}) has no point {path!r} "
                f"with group counts {dict(self.counts)}"
            ) from None

    def address_of(self, path: str) -> int:
        return self.address + self.point(path).offset


def layout(
    model_ids: Sequence[int],
    *,
    base: int = BASE_ADDRESS,
    counts: Mapping[int, Counts | int] | None = None,
) -> tuple[list[ModelBlock], int]:
    """Where each model sits after the marker, and the address of the end model."""
    counts = counts or {}
    unknown = sorted(set(counts) - set(model_ids))
    if unknown:
        raise ValueError(f"counts for models {unknown} that are not in the map {list(model_ids)}")
    address = base + 2
    blocks = []
    for mid in model_ids:
        block = ModelBlock.at(model_def(mid), address, counts.get(mid))
        blocks.append(block)
        address = block.end
    return blocks, address


class DeviceMap:
    """The SunSpec register map of one device, from ``base`` (40000) to its end model.

    ``counts`` gives the instances of each model's repeating groups, by model id, as a mapping
    of group name to count or one number for a model of one such group:
    ``DeviceMap([1, 160], counts={160: 2})`` lays out two MPPT modules and sets ``N`` to 2.
    Points are named by path (``module[1].DCA``). Values are set and read in engineering units
    through each point's scale factor, which must be set first (``set_raw`` on the ``*_SF``).
    """

    def __init__(
        self,
        model_ids: Sequence[int],
        *,
        base: int = BASE_ADDRESS,
        counts: Mapping[int, Counts | int] | None = None,
    ) -> None:
        blocks, end = layout(model_ids, base=base, counts=counts)
        self._setup(base, blocks, end)
        for block in self.blocks:
            for p in block.points.values():
                if p.type != "string":
                    self._put(block.address + p.offset, encode(p, None))
            self._put(block.address, [block.model.id, block.length])
            for path, value in _count_points(block).items():
                self._put(block.address_of(path), encode(block.points[path], value))

    @classmethod
    def placed(cls, blocks: Sequence[ModelBlock], *, base: int, end: int) -> DeviceMap:
        """A map of blocks where a device placed them (``end``: the end model's address);
        registers between them (models openmeg has no definition of) stay 0."""
        dmap = cls.__new__(cls)
        dmap._setup(base, list(blocks), end)
        return dmap

    def _setup(self, base: int, blocks: list[ModelBlock], end: int) -> None:
        self.base = base
        self.blocks = blocks
        self.registers = [0] * (end + 2 - base)
        self.registers[0:2] = MARKER
        self.registers[-2:] = [END_MODEL, 0]
        self._by_id: dict[int, ModelBlock] = {}
        for block in blocks:
            self._by_id.setdefault(block.model.id, block)

    def _put(self, address: int, regs: list[int]) -> None:
        i = address - self.base
        self.registers[i : i + len(regs)] = regs

    def serves(self, model_id: int) -> bool:
        return model_id in self._by_id

    def block(self, model_id: int) -> ModelBlock:
        """The (first) block of ``model_id``."""
        try:
            return self._by_id[model_id]
        except KeyError:
            raise DeviceError(f"the device serves no SunSpec model {model_id}") from None

    def _point(self, model_id: int, name: str) -> tuple[ModelBlock, PointDef]:
        block = self.block(model_id)
        return block, block.point(name)

    def set_raw(self, model_id: int, name: str, raw: RawValue) -> None:
        block, p = self._point(model_id, name)
        self._put(block.address + p.offset, encode(p, raw))

    def raw(self, model_id: int, name: str) -> RawValue:
        block, p = self._point(model_id, name)
        i = block.address + p.offset - self.base
        return decode(p, self.registers[i : i + p.size])

    def scale_factor(self, model_id: int, name: str) -> int:
        _, p = self._point(model_id, name)
        if p.sf_fixed is not None:
            return p.sf_fixed
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
        if is_float(p.type):
            self.set_raw(model_id, name, float(value))
            return
        raw = to_raw(value, self.scale_factor(model_id, name))
        lo, hi = RANGE.get(p.type, (None, None))
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
            if block.address <= address < block.end:
                for p in block.points.values():
                    if block.address + p.offset <= address < block.address + p.offset + p.size:
                        return block, p
        return None

    def writable_runs(self) -> list[tuple[int, int, bool]]:
        """``(address, count, writable)`` runs covering the whole map."""
        flags = [False] * len(self.registers)
        for block in self.blocks:
            for p in block.points.values():
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


def _count_points(block: ModelBlock) -> dict[str, int]:
    """The count points of a block and the values its group counts give them: a group's own
    count point, or for a legacy group (count 0, known from ``L``) the model's one ``count``
    point (model 160 ``N``)."""
    out: dict[str, int] = {}
    legacy = []
    for name, g in block.model.repeating().items():
        if isinstance(g.count, str):
            out[g.count] = block.counts[name]
        elif g.count == 0:
            legacy.append(name)
    spare = [n for n, p in block.model.points.items() if p.type == "count" and n not in out]
    if len(legacy) == 1 and len(spare) == 1:
        out[spare[0]] = block.counts[legacy[0]]
    return out
