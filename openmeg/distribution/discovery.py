"""SunSpec discovery (Y.2071 R4): given only host, port and unit id, find the SunSpec marker, walk
the model chain and build the device's point map, so a new device needs no configuration.

Any SunSpec device is accepted: its family follows from the models it serves
(``der.sunspec_catalogue.family_of``), each of our points from the first model that serves
it, its commandable points from ``der.sunspec_controls``. A device openmeg cannot operate is
returned monitored-only, with the reason.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from openmeg.core.addresses import DeviceAddress
from openmeg.core.errors import CommandError, DeviceError
from openmeg.der import sunspec_catalogue as cat
from openmeg.der import sunspec_controls as ctl
from openmeg.der import sunspec_map as ssm
from openmeg.protocols.modbus import MAX_READ, ModbusMaster
from openmeg.protocols.sunspec import (
    END_MODEL,
    MARKER,
    DeviceMap,
    ModelBlock,
    decode,
    known,
    model_def,
)
from openmeg.protocols.sunspec_model import ModelDef

SEARCH_BASES = (40000, 0, 50000)
"""Where the SunSpec specification lets a map start."""
LIMITS = {
    "p_limit_pct": (0.0, 100.0),
    "connected": (0.0, 1.0),
    "pf_set": (-1.0, 1.0),
}
"""The ranges of commandable points (p_set_kw is checked against the ratings by its plan)."""


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
    """A device as discovery found it. ``reason`` says why it can only be monitored (``None``:
    openmeg operates it); such a device has no commandable points."""

    id: str
    family: str
    master: ModbusMaster
    base: int
    models: tuple[ModelBlock, ...]
    manufacturer: str
    model_name: str
    points: tuple[PointAddress, ...]
    map: DeviceMap
    ratings: cat.Ratings
    reason: str | None = None

    @property
    def monitored_only(self) -> bool:
        return self.reason is not None

    def point(self, name: str) -> PointAddress:
        for p in self.points:
            if p.point == name:
                return p
        raise KeyError(f"device {self.id!r} has no point {name!r}")

    def plan(self, point: str, value: float, *, revert_s: int | None = None) -> ctl.ControlPlan:
        """The writes that command ``point`` to ``value`` (see ``der.sunspec_controls``);
        ``CommandError`` before anything is written when it cannot be done."""
        if self.reason is not None:
            raise CommandError(f"{self.id} is monitored only: {self.reason}")
        return ctl.plan_command(
            self.id, self.map, self.family, self.ratings, point, value, revert_s=revert_s
        )


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


async def _read(master: ModbusMaster, address: int, count: int) -> list[int]:
    regs: list[int] = []
    for start in range(0, count, MAX_READ):
        regs += await master.read(address + start, min(MAX_READ, count - start))
    return regs


def block_of(model: ModelDef, address: int, regs: list[int], where: str) -> ModelBlock:
    """A model's block laid out from its registers as read (``ID``, ``L`` and the rest): the
    counts of its repeating groups from their count points, or from ``L`` for a legacy one."""
    served_length = regs[1]
    counts: dict[str, int] = {}
    legacy = []
    for name, g in model.repeating().items():
        if isinstance(g.count, str):
            p = model.points[g.count]
            n = decode(p, regs[p.offset : p.offset + p.size])
            if not isinstance(n, int):
                raise DeviceError(
                    f"{where}: model {model.id} at {address} does not implement its count "
                    f"point {g.count}, so its groups {name} cannot be laid out"
                )
            counts[name] = n
        elif g.count == 0:
            legacy.append(name)
    if len(legacy) == 1:
        base = model.length_with({**counts, legacy[0]: 0})
        each = model.length_with({**counts, legacy[0]: 1}) - base
        if each <= 0 or (served_length - base) % each or served_length < base:
            raise DeviceError(
                f"{where}: model {model.id} at {address} says L={served_length}, which is no "
                f"whole number of its {legacy[0]} groups ({each} registers after {base})"
            )
        counts[legacy[0]] = (served_length - base) // each
    block = ModelBlock.at(model, address, counts)
    if block.length == served_length:
        return block
    if model.id == 1 and served_length == block.length - 1:  # legacy common model: no Pad
        points = {k: p for k, p in block.points.items() if k != "Pad"}
        return ModelBlock(
            model=model, address=address, counts={}, length=served_length, points=points
        )
    raise DeviceError(
        f"{where}: model {model.id} at {address} says L={served_length}, its definition "
        f"{block.length} with group counts {dict(block.counts)}"
    )


async def _chain(master: ModbusMaster, base: int) -> tuple[list[int], list[ModelBlock], int]:
    chain: list[int] = []
    blocks: list[ModelBlock] = []
    address = base + 2
    while True:
        model_id, length = await master.read(address, 2)
        if model_id == END_MODEL:
            return chain, blocks, address
        chain.append(model_id)
        if known(model_id):
            regs = await _read(master, address, length + 2)
            blocks.append(block_of(model_def(model_id), address, regs, master.address))
        address += 2 + length
        if address > base + 65535 or len(chain) > 100:
            raise DeviceError(f"{master.address}: the SunSpec model chain has no end model")


async def discover(master: ModbusMaster) -> Discovered:
    """Walk the device's SunSpec model chain and map its points to openmeg's."""
    base = await _find_base(master)
    chain, blocks, end = await _chain(master, base)
    dmap = DeviceMap.placed(blocks, base=base, end=end)
    for block in blocks:
        regs = await _read(master, block.address, block.length + 2)
        dmap.registers[block.address - base : block.end - base] = regs
    family, reason = cat.family_of(tuple(chain))
    points = _readings(dmap, family)
    key = cat.KEY_POINT.get(family)
    if reason is None and key is not None and not any(p.point == key for p in points):
        reason = f"it serves no {key}: the SunSpec points it comes from are not implemented"
    if reason is None:
        points += _commands(dmap, family)
    common = dmap.serves(cat.COMMON)
    serial = dmap.raw(cat.COMMON, "SN") if common else None
    return Discovered(
        id=device_id_of(str(serial or ""), master.address.replace(":", "-")),
        family=family,
        master=master,
        base=base,
        models=tuple(dmap.blocks),
        manufacturer=str((dmap.raw(cat.COMMON, "Mn") if common else None) or ""),
        model_name=str((dmap.raw(cat.COMMON, "Md") if common else None) or ""),
        points=tuple(points),
        map=dmap,
        ratings=_ratings(dmap),
        reason=reason,
    )


def _address(
    dmap: DeviceMap,
    point: str,
    model: int,
    name: str,
    factor: float,
    *,
    writable: bool = False,
    limits: tuple[float | None, float | None] | None = None,
) -> PointAddress:
    block = dmap.block(model)
    p = block.point(name)
    low, high = (None, None)
    if writable:
        low, high = limits if limits is not None else LIMITS.get(point, (None, None))
    return PointAddress(
        point=point,
        model=model,
        name=name,
        address=block.address + p.offset,
        size=p.size,
        type=p.type,
        sf_address=block.address_of(p.sf) if p.sf else None,
        factor=factor,
        writable=writable,
        low=low,
        high=high,
    )


def _implemented(dmap: DeviceMap, model: int, name: str) -> bool:
    """SunSpec: a point the device does not implement always reads so (its scale factor too)."""
    if not dmap.serves(model) or name not in dmap.block(model).points:
        return False
    p = dmap.block(model).points[name]
    sf_ok = p.sf is None or dmap.raw(model, p.sf) is not None
    return sf_ok and dmap.raw(model, name) is not None


def _readings(dmap: DeviceMap, family: str) -> list[PointAddress]:
    out = []
    for point, sources in cat.READINGS.get(family, {}).items():
        for s in sources:
            if _implemented(dmap, s.model, s.name):
                out.append(_address(dmap, point, s.model, s.name, s.factor))
                break
    if family in ("inverter", "storage") and dmap.serves(cat.MPPT):
        block = dmap.block(cat.MPPT)
        for i in range(block.counts.get("module", 0)):
            for suffix, name, factor in cat.MPPT_READINGS:
                path = f"module[{i}].{name}"
                if _implemented(dmap, cat.MPPT, path):
                    out.append(_address(dmap, f"mppt{i + 1}_{suffix}", cat.MPPT, path, factor))
    return out


def _commands(dmap: DeviceMap, family: str) -> list[PointAddress]:
    out = [
        _address(dmap, point, model, name, 0.001 if name == "WSet" else 1.0, writable=True)
        for point, (model, name) in ctl.commandable(dmap, family).items()
    ]
    if family in ("transfer_switch", "line_switch"):  # vendor models: written as they are
        out += [
            _address(
                dmap, m.point, m.model, m.name, m.factor, writable=True, limits=(m.low, m.high)
            )
            for m in ssm.POINT_MAP[family]
            if m.writable and dmap.serves(m.model)
        ]
    return out


def _ratings(dmap: DeviceMap) -> cat.Ratings:
    found: dict[str, float | None] = {}
    for field, sources in cat.RATING_SOURCES.items():
        found[field] = None
        for s in sources:
            if _implemented(dmap, s.model, s.name):
                found[field] = dmap.value(s.model, s.name)
                break
    return cat.Ratings(**found)


def unexpected_models(address: DeviceAddress, found: Sequence[int]) -> str | None:
    """What differs between the SunSpec models discovery ``found`` and those the site file
    expects at ``address`` (``None``: nothing, or no expectation)."""
    if not address.models or set(found) == set(address.models):
        return None
    missing = [m for m in address.models if m not in found]
    extra = [m for m in found if m not in address.models]
    parts = [f"missing {', '.join(map(str, missing))}"] if missing else []
    parts += [f"not expected {', '.join(map(str, extra))}"] if extra else []
    return (
        f"discovery at {address} found SunSpec models {', '.join(map(str, found))}; the site "
        f"file expects {', '.join(map(str, address.models))} ({'; '.join(parts)}): check the "
        "device, or correct its models in the site file"
    )
