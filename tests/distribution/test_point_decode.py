"""A point's value from its register bytes by SunSpec type: hand-computed cases, the reserved
not-implemented patterns, and the model-definition decoding of openmeg.protocols.sunspec."""

import struct

import pytest

from openmeg.distribution.point_decode import decoder, raw_value, scale_of


def regs(*values: int) -> bytes:
    return struct.pack(f">{len(values)}H", *values)


@pytest.mark.parametrize(
    ("type_", "size", "registers", "expected"),
    [
        ("int16", 1, (0xFF38,), -200),
        ("int16", 1, (0x7FFF,), 32767),
        ("int16", 1, (0x8000,), None),  # not implemented
        ("uint16", 1, (0xFFFE,), 65534),
        ("uint16", 1, (0xFFFF,), None),
        ("enum16", 1, (3,), 3),
        ("enum16", 1, (0xFFFF,), None),
        ("bitfield16", 1, (0xFFFF,), None),
        ("sunssf", 1, (0xFFFE,), -2),
        ("sunssf", 1, (0x8000,), None),
        ("int32", 2, (0xFFFF, 0xFFFE), -2),
        ("int32", 2, (0x0001, 0x0000), 65536),
        ("int32", 2, (0x8000, 0x0000), None),
        ("uint32", 2, (0x0001, 0x0002), 65538),
        ("uint32", 2, (0xFFFF, 0xFFFF), None),
        ("bitfield32", 2, (0xFFFF, 0xFFFF), None),
        ("acc16", 1, (0,), 0),  # an accumulator has no reserved value
        ("acc32", 2, (0xFFFF, 0xFFFF), 4294967295),
        ("acc32", 2, (0, 0), 0),
        ("acc64", 4, (0, 0, 1, 0), 65536),
        ("float32", 2, struct.unpack(">2H", struct.pack(">f", 1.5)), 1.5),
        ("float32", 2, (0x7FC0, 0x0000), None),  # NaN
        ("string", 4, (0x6F70, 0x656E, 0, 0), None),  # a string is no number
        ("int16", 2, (1, 2), None),  # a size its type does not have
    ],
)
def test_raw_values_by_type(
    type_: str, size: int, registers: tuple[int, ...], expected: float | None
) -> None:
    assert raw_value(type_, size)(regs(*registers)) == expected


def test_scale_factors_outside_sunspec_range_are_invalid() -> None:
    assert [scale_of(regs(v)) for v in (0xFFFE, 0, 3, 0x8000, 11, 0xFFF5)] == [
        10.0**-2,
        1.0,
        1000.0,
        None,
        None,
        None,
    ]


def test_values_in_openmegs_unit() -> None:
    w_kw = decoder("int16", 1, scaled=True, factor=0.001)
    assert w_kw(regs(0x1F40), regs(1)) == 8000 * 10.0 * 0.001  # 8000 W x 10 -> 80 kW
    assert w_kw(regs(0x1F40), regs(1)) == 80.0
    assert w_kw(regs(0x8000), regs(1)) is None
    assert w_kw(regs(100), regs(0x8000)) is None
    soc = decoder("uint16", 1, scaled=True, factor=0.01)
    assert soc(regs(5000), regs(0xFFFF)) == 5000 * 0.1 * 0.01  # 500.0 % x 0.01 -> 5.0
    mode = decoder("enum16", 1, scaled=False, factor=1.0)
    assert mode(regs(2), b"") == 2.0


def test_same_numbers_as_the_model_definition_decoding() -> None:
    """An independent path: openmeg.protocols.sunspec decodes through the model definition."""
    from openmeg.protocols.sunspec import decode, model_def

    inverter = model_def(103).points
    cases = [("W", (0xFF38,)), ("WH", (0x0001, 0x86A0)), ("Hz", (5000,)), ("TmpCab", (0x8000,))]
    for name, values in cases:
        p = inverter[name]
        assert raw_value(p.type, p.size)(regs(*values)) == decode(p, list(values))
