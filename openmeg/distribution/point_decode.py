"""A point's value from the bytes of its registers, by its SunSpec type alone (the feeder's hot
path: no model definition is consulted).

SunSpec marks a value the device does not implement with a reserved pattern (``0x8000`` for
int16 and sunssf, ``0xFFFF`` for uint16, enum16 and bitfield16, ``0x80000000`` for int32, all ones
for the unsigned 32- and 64-bit types, NaN for float32); such a value, an infinite float32, a
string, an unknown type or a scale factor outside -10..10 decodes to ``None`` (quality invalid:
the point travels with no value, never as NaN). Accumulators have no
reserved pattern: 0 is a count like any other.
"""

from __future__ import annotations

import math
import struct
from collections.abc import Callable

Decoder = Callable[[bytes, bytes], float | None]
"""``(value registers, scale-factor register or b"") -> value in openmeg's unit, or None``."""

_SIGNED = {"int16": 1, "sunssf": 1, "int32": 2, "int64": 4}
_UNSIGNED = {
    "uint16": 1,
    "enum16": 1,
    "bitfield16": 1,
    "uint32": 2,
    "enum32": 2,
    "bitfield32": 2,
    "uint64": 4,
}
_ACCUMULATOR = {"acc16": 1, "acc32": 2, "acc64": 4, "count": 1}
SCALE = {sf: 10.0**sf for sf in range(-10, 11)}
"""``10 ** sf`` for every scale factor SunSpec allows."""
_SF_NOT_IMPLEMENTED = b"\x80\x00"


def scale_of(sf: bytes) -> float | None:
    """``10 ** sf`` of a sunssf register; ``None`` when not implemented or out of range."""
    if sf == _SF_NOT_IMPLEMENTED:
        return None
    return SCALE.get(int.from_bytes(sf, "big", signed=True))


def raw_value(type_: str, size: int) -> Callable[[bytes], int | float | None]:
    """The raw (unscaled) value of a point of SunSpec type ``type_`` from its registers."""
    if type_ in _SIGNED and size == _SIGNED[type_]:
        reserved = (0x80 << (8 * (2 * size - 1))).to_bytes(2 * size, "big")
        return lambda b: None if b == reserved else int.from_bytes(b, "big", signed=True)
    if type_ in _UNSIGNED and size == _UNSIGNED[type_]:
        ones = b"\xff" * (2 * size)
        return lambda b: None if b == ones else int.from_bytes(b, "big")
    if type_ in _ACCUMULATOR and size == _ACCUMULATOR[type_]:
        return lambda b: int.from_bytes(b, "big")
    if type_ == "float32" and size == 2:
        return _float32
    return lambda b: None  # string, pad, or a type the feeder does not turn into a number


def _float32(b: bytes) -> float | None:
    (value,) = struct.unpack(">f", b)
    return float(value) if math.isfinite(value) else None


def decoder(type_: str, size: int, *, scaled: bool, factor: float) -> Decoder:
    """A point's value in openmeg's unit: raw value times ``10 ** sf`` times ``factor``."""
    raw_of = raw_value(type_, size)
    if not scaled:

        def unscaled(b: bytes, sf: bytes) -> float | None:
            raw = raw_of(b)
            return None if raw is None else raw * 1.0 * factor

        return unscaled

    def scaled_value(b: bytes, sf: bytes) -> float | None:
        raw = raw_of(b)
        scale = scale_of(sf)
        if raw is None or scale is None:
            return None
        return raw * scale * factor

    return scaled_value
