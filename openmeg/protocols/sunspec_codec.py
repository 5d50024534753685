"""SunSpec point encoding: registers to raw values and back, by SunSpec type, with pysunspec2's
type table (``sunspec2.mb.point_type_info``: widths, byte layouts, not-implemented values).

Two rules of openmeg differ from pysunspec2's table: an accumulator (``acc16/32/64``) reading 0
is a count of 0, not "not implemented" (a new meter has counted nothing yet); a ``pad`` is
written as 0x8000, as the SunSpec information model specification gives it.
"""

from __future__ import annotations

import math
import struct

from sunspec2 import mb, mdef

RawValue = int | float | str | None
"""A point's value before its scale factor; ``None``: not implemented."""

_ACCUMULATORS = frozenset({mdef.TYPE_ACC16, mdef.TYPE_ACC32, mdef.TYPE_ACC64})
_FLOATS = frozenset({mdef.TYPE_FLOAT32, mdef.TYPE_FLOAT64})
_TEXT = frozenset({mdef.TYPE_STRING, mdef.TYPE_IPV6ADDR, mdef.TYPE_EUI48})


def _info(type_: str) -> mb.PointInfo:
    info = mb.point_type_info.get(type_)
    if info is None:
        known = ", ".join(sorted(mb.point_type_info))
        raise ValueError(f"{type_!r} is no SunSpec type; the types are {known}")
    return info


def width(type_: str, size: int | None = None) -> int:
    """Registers a point of ``type_`` takes (``size`` for strings)."""
    length = _info(type_).len
    if length is None:
        if not size:
            raise ValueError(f"a SunSpec {type_} needs its size in registers")
        return int(size)
    return int(length)


def is_float(type_: str) -> bool:
    return type_ in _FLOATS


def decode_raw(type_: str, registers: list[int]) -> RawValue:
    """The raw value registers hold, by SunSpec type alone; ``None`` when not implemented."""
    info = _info(type_)
    data = struct.pack(f">{len(registers)}H", *(r & 0xFFFF for r in registers))
    if type_ == mdef.TYPE_STRING:
        text = data.decode("utf-8", errors="replace").rstrip("\0")
        return text if text and not text.startswith("\0") else None
    if len(registers) != info.len:
        raise ValueError(f"a SunSpec {type_} takes {info.len} registers, got {len(registers)}")
    value = info.data_to(data)
    if type_ in _ACCUMULATORS:
        return int(value)
    if value is None or not info.is_impl(value):
        return None
    if type_ in _TEXT:
        return str(value)
    if type_ in _FLOATS:
        return float(value)
    return int(value)


def encode_raw(type_: str, size: int, raw: RawValue) -> list[int]:
    """Registers holding ``raw`` as a SunSpec ``type_`` of ``size`` registers (``None``: the
    type's not-implemented value); ``ValueError`` when it does not fit the type."""
    info = _info(type_)
    n = width(type_, size)
    if raw is None:
        if type_ == mdef.TYPE_PAD:
            return [0x8000]
        data = mb.create_unimpl_value(type_, len=n * 2)
    elif type_ == mdef.TYPE_STRING:
        if not isinstance(raw, str):
            raise ValueError(f"a SunSpec string needs text, not {raw!r}")
        data = raw.encode()[: n * 2].ljust(n * 2, b"\0")
    elif isinstance(raw, str):
        if type_ in _TEXT:
            data = info.to_data(raw, n * 2)
        else:
            raise ValueError(f"a SunSpec {type_} needs a number, not {raw!r}")
    elif type_ in _FLOATS:
        if math.isnan(raw):
            raise ValueError(f"NaN is the not-implemented value of a {type_}: write None")
        data = info.to_data(float(raw), n * 2)
    else:
        if isinstance(raw, float) and not raw.is_integer():
            raise ValueError(f"a SunSpec {type_} holds whole numbers, not {raw}")
        try:
            data = info.to_data(int(raw), n * 2)
        except struct.error as err:
            raise ValueError(f"{raw} does not fit a SunSpec {type_}") from err
    return list(struct.unpack(f">{n}H", data[: n * 2]))


RANGE = {
    "int16": (-0x7FFF, 0x7FFF),
    "uint16": (0, 0xFFFE),
    "count": (0, 0xFFFE),
    "enum16": (0, 0xFFFE),
    "bitfield16": (0, 0x7FFF),
    "acc16": (0, 0xFFFF),
    "int32": (-0x7FFFFFFF, 0x7FFFFFFF),
    "uint32": (0, 0xFFFFFFFE),
    "enum32": (0, 0xFFFFFFFE),
    "bitfield32": (0, 0x7FFFFFFF),
    "acc32": (0, 0xFFFFFFFF),
    "int64": (-0x7FFFFFFFFFFFFFFF, 0x7FFFFFFFFFFFFFFF),
    "uint64": (0, 0xFFFFFFFFFFFFFFFE),
    "acc64": (0, 0xFFFFFFFFFFFFFFFF),
}
"""The raw values each integer type holds without meaning "not implemented"."""


def to_raw(value: float, sf: int) -> int:
    """An engineering value as the integer a register holds under scale factor ``sf``."""
    return round(value / 10.0**sf)


def from_raw(raw: float, sf: int) -> float:
    """The engineering value of a raw register value under scale factor ``sf`` (divided, not
    multiplied, for a negative one: 2005 under -1 is 200.5 exactly)."""
    return raw * 10.0**sf if sf >= 0 else raw / 10.0**-sf
