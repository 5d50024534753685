"""SunSpec model definitions read through pysunspec2's model layer (``sunspec2.mdef``), and
where each point of a model sits once the counts of its repeating groups are known.

A model is one top-level group: its points, then its groups in order. A repeating group is
laid out ``count`` times in a row; its count is a constant, a point of the top-level group
(models 7xx: ``NCrv``, ``NPt``...), or ``0``, the legacy form, when it follows from the model's
length ``L`` (model 160, whose point ``N`` says the same). Inside a device a point is named by
its path: ``W``, ``PFWInj.PF`` (a group that does not repeat), ``module[1].DCA`` (the second
instance of a repeating group, counted from 0, as pysunspec2's ``model.module[1]``).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import sunspec2
from sunspec2 import mdef

from openmeg.core.errors import DeviceError
from openmeg.protocols.sunspec_codec import width

VENDOR_DIR = Path(__file__).resolve().parent / "sunspec_models"
"""openmeg's vendor models (64900 transfer switch, 64901 condition sensor)."""
STANDARD_DIR = Path(sunspec2.__file__).resolve().parent / "models" / "json"
"""The SunSpec Alliance's models as pysunspec2 ships them."""

Counts = Mapping[str, int]
"""Instances of each repeating group of a model, by group name."""


@dataclass(frozen=True, kw_only=True, slots=True)
class PointDef:
    """One point: where it sits (in a definition, from the start of its group instance; in a
    laid-out block, from the model's ``ID`` register) and its type. In a block, ``name`` and
    ``sf`` are paths (``module[1].DCA``, its scale factor ``DCA_SF``)."""

    name: str
    type: str
    size: int
    offset: int
    sf: str | None = None
    sf_fixed: int | None = None
    units: str = ""
    writable: bool = False
    mandatory: bool = False
    symbols: tuple[tuple[str, int], ...] = ()

    def symbol(self, name: str) -> int:
        """The value of the enumeration or bit symbol ``name``."""
        for symbol, value in self.symbols:
            if symbol == name:
                return value
        known = ", ".join(s for s, _ in self.symbols)
        raise KeyError(f"point {self.name} has no symbol {name!r}; it has {known}")


@dataclass(frozen=True, kw_only=True)
class GroupDef:
    """A group: its points, its groups, and how many times it repeats (``None``: once)."""

    name: str
    count: int | str | None
    points: dict[str, PointDef]
    groups: tuple[GroupDef, ...] = ()

    @property
    def points_size(self) -> int:
        return sum(p.size for p in self.points.values())


@dataclass(frozen=True, kw_only=True)
class ModelDef:
    """A SunSpec model: its id, name and top-level group."""

    id: int
    name: str
    label: str
    group: GroupDef

    @property
    def points(self) -> dict[str, PointDef]:
        """The points of the top-level group (their offsets never depend on group counts)."""
        return self.group.points

    def repeating(self) -> dict[str, GroupDef]:
        """Every repeating group of the model, nested ones too, by name."""
        found: dict[str, GroupDef] = {}

        def walk(group: GroupDef) -> None:
            for g in group.groups:
                if g.count is not None:
                    found[g.name] = g
                walk(g)

        walk(self.group)
        return found

    @property
    def length(self) -> int:
        """``L`` of a model without repeating groups (see ``length_with`` for the others)."""
        if self.repeating():
            raise DeviceError(
                f"SunSpec model {self.id} has repeating groups ({', '.join(self.repeating())}): "
                "its length follows from their counts, ask length_with(counts)"
            )
        return self.length_with({})

    def length_with(self, counts: Counts) -> int:
        """``L`` (registers after ``ID`` and ``L``) with ``counts`` instances of each group."""
        return _size(self.group, self.counts(counts)) - 2

    def counts(self, given: Counts | int | None = None) -> dict[str, int]:
        """The count of every repeating group: ``given`` (by group name, or one number when the
        model has one repeating group of variable count), constants, 0 for the rest."""
        groups = self.repeating()
        variable = [n for n, g in groups.items() if not isinstance(g.count, int) or g.count == 0]
        if isinstance(given, int):
            if len(variable) != 1:
                raise ValueError(
                    f"model {self.id} has {len(variable)} repeating groups of variable count "
                    f"({', '.join(variable) or 'none'}): give counts by group name"
                )
            given = {variable[0]: given}
        given = {
            n: c for n, c in (given or {}).items() if n not in groups or groups[n].count != c
        }  # a constant count may be given back as it is
        unknown = sorted(set(given) - set(variable))
        if unknown:
            raise ValueError(
                f"model {self.id} has no repeating group {', '.join(unknown)} of variable "
                f"count; it has {', '.join(variable) or 'none'}"
            )
        out: dict[str, int] = {}
        for name, g in groups.items():
            n = given.get(name, g.count if isinstance(g.count, int) else 0)
            if n < 0:
                raise ValueError(f"model {self.id} group {name}: a count is 0 or more, not {n}")
            out[name] = n
        return out


def _size(group: GroupDef, counts: Mapping[str, int]) -> int:
    size = group.points_size
    for g in group.groups:
        n = 1 if g.count is None else counts[g.name]
        size += n * _size(g, counts)
    return size


def _point(p: dict[str, Any], offset: int) -> PointDef:
    sf = p.get(mdef.SF)
    return PointDef(
        name=p[mdef.NAME],
        type=p[mdef.TYPE],
        size=width(p[mdef.TYPE], p.get(mdef.SIZE)),
        offset=offset,
        sf=sf if isinstance(sf, str) else None,
        sf_fixed=int(sf) if isinstance(sf, int) else None,
        units=p.get(mdef.UNITS, ""),
        writable=p.get(mdef.ACCESS) == mdef.ACCESS_RW,
        mandatory=p.get(mdef.MANDATORY) == mdef.MANDATORY_TRUE,
        symbols=tuple((s[mdef.NAME], int(s[mdef.VALUE])) for s in p.get(mdef.SYMBOLS, [])),
    )


def _group(g: dict[str, Any]) -> GroupDef:
    points: dict[str, PointDef] = {}
    offset = 0
    for p in g.get(mdef.POINTS, []):
        points[p[mdef.NAME]] = point = _point(p, offset)
        offset += point.size
    count = g.get(mdef.COUNT)
    if isinstance(count, str) and count.isdigit():
        count = int(count)
    return GroupDef(
        name=g[mdef.NAME],
        count=count,
        points=points,
        groups=tuple(_group(x) for x in g.get(mdef.GROUPS, [])),
    )


def definition_file(model_id: int) -> Path:
    name = str(mdef.to_json_filename(model_id))
    return VENDOR_DIR / name if (VENDOR_DIR / name).exists() else STANDARD_DIR / name


@cache
def model_def(model_id: int) -> ModelDef:
    """The definition of SunSpec model ``model_id``; ``DeviceError`` when it is unknown."""
    path = definition_file(model_id)
    try:
        raw = mdef.from_json_file(str(path))
    except (OSError, ValueError) as err:
        raise DeviceError(
            f"SunSpec model {model_id} is not known: no definition in pysunspec2 or in {VENDOR_DIR}"
        ) from err
    problems = mdef.validate_model_def(raw)
    if problems:
        raise DeviceError(f"the definition of SunSpec model {model_id} is invalid: {problems}")
    top = raw[mdef.GROUP]
    return ModelDef(
        id=model_id, name=top[mdef.NAME], label=top.get(mdef.LABEL, ""), group=_group(top)
    )


def known(model_id: int) -> bool:
    """Whether openmeg has a definition of ``model_id``."""
    try:
        model_def(model_id)
    except DeviceError:
        return False
    return True


@cache
def _placed(model_id: int, counts: tuple[tuple[str, int], ...]) -> dict[str, PointDef]:
    model = model_def(model_id)
    by_name = dict(counts)
    out: dict[str, PointDef] = {}

    def place(group: GroupDef, prefix: str, offset: int) -> int:
        for p in group.points.values():
            sf = p.sf
            if sf is not None and sf in group.points and prefix:
                sf = prefix + sf  # pysunspec2: the group's own point first, then the model's
            out[prefix + p.name] = dataclasses.replace(
                p, name=prefix + p.name, offset=offset + p.offset, sf=sf
            )
        offset += group.points_size
        for g in group.groups:
            if g.count is None:
                offset = place(g, f"{prefix}{g.name}.", offset)
            else:
                for i in range(by_name[g.name]):
                    offset = place(g, f"{prefix}{g.name}[{i}].", offset)
        return offset

    place(model.group, "", 0)
    return out


def place_points(model: ModelDef, counts: Mapping[str, int]) -> dict[str, PointDef]:
    """Every point of ``model`` by path, its offset from the model's ``ID`` register."""
    return _placed(model.id, tuple(sorted(model.counts(counts).items())))
