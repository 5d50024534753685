"""The SunSpec codec: layouts against pysunspec2's own model layer, encodings by hand."""

import json

import pytest
from sunspec2 import device as ss_device

from openmeg.core.errors import DeviceError
from openmeg.protocols.sunspec import DeviceMap, decode_raw, encode, from_raw, model_def
from openmeg.protocols.sunspec_model import STANDARD_DIR


def _fixed_models() -> list[int]:
    out = []
    for path in sorted(STANDARD_DIR.glob("model_*.json")):
        model_id = json.loads(path.read_text())["id"]
        if not model_def(model_id).repeating():
            out.append(model_id)
    return out


def test_every_fixed_model_is_as_long_as_pysunspec2_lays_it_out() -> None:
    models = _fixed_models()
    assert {1, 101, 103, 120, 123, 124, 203, 701, 702, 704, 713, 802} <= set(models)
    for model_id in models:
        theirs = ss_device.Model(model_id=model_id)
        assert model_def(model_id).length == theirs.len - 2, model_id
        ours = DeviceMap([model_id]).block(model_id)
        for name, p in theirs.points.items():
            assert ours.points[name].offset == p.offset, (model_id, name)


def test_model_704_groups_that_do_not_repeat_are_laid_out_after_the_points() -> None:
    block = DeviceMap([704]).block(704)
    # 704's top-level points take 59 registers (ID, L, 29 of one register, 14 of two), then its
    # four power factor groups of 2 (PF, Ext): L = 59 + 8 - 2
    assert block.length == 65
    assert (block.points["WSetEna"].offset, block.points["WSet"].offset) == (22, 24)
    assert [block.points[f"{g}.PF"].offset for g in ("PFWInj", "PFWInjRvrt", "PFWAbs")] == [
        59,
        61,
        63,
    ]
    assert block.points["PFWAbsRvrt.Ext"].offset == 66
    assert block.points["PFWInj.PF"].sf == "PF_SF"


def test_mppt_modules_are_laid_out_from_their_count() -> None:
    dmap = DeviceMap([1, 160], counts={160: 2})
    block = dmap.block(160)
    assert block.address == 40070 and block.counts == {"module": 2}
    # 10 registers of fixed points, then 20 a module: L = 10 - 2 + 2 * 20
    assert block.length == 48 and dmap.registers[block.address - 40000 + 1] == 48
    assert dmap.raw(160, "N") == 2
    assert block.address_of("module[0].DCA") == 40070 + 10 + 1 + 8 == 40089
    assert block.address_of("module[1].DCA") == 40070 + 10 + 20 + 1 + 8 == 40109
    assert block.points["module[1].DCA"].sf == "DCA_SF"
    dmap.set_raw(160, "DCA_SF", -2)
    dmap.set_value(160, "module[1].DCA", 7.99)
    assert dmap.registers[40109 - 40000] == 799
    assert dmap.value(160, "module[1].DCA") == 7.99
    assert (
        DeviceMap([1, 160], counts={160: {"module": 2}}).registers
        == DeviceMap([1, 160], counts={160: 2}).registers
    )
    assert dmap.registers[-2:] == [0xFFFF, 0] and len(dmap.registers) == 2 + 68 + 50 + 2
    with pytest.raises(ValueError, match="no repeating group bogus"):
        DeviceMap([160], counts={160: {"bogus": 1}})
    with pytest.raises(DeviceError, match=r"has no point 'module\[2\]\.DCA'"):
        dmap.raw(160, "module[2].DCA")
    with pytest.raises(DeviceError, match="its length follows from their counts"):
        _ = model_def(160).length


@pytest.mark.parametrize(
    ("type_", "registers", "value"),
    [
        ("int16", [0x8000], None),
        ("int16", [0xFFFF], -1),
        ("uint16", [0xFFFF], None),
        ("sunssf", [0xFFFE], -2),
        ("count", [2], 2),
        ("acc32", [0, 0], 0),  # a count of nothing yet, not "not implemented"
        ("uint32", [1, 2], 65538),
        ("int32", [0xFFFF, 0xF448], -3000),
        ("int32", [0x8000, 0], None),
        ("uint64", [0, 0, 1, 0], 65536),
        ("float32", [0x7FC0, 0], None),
        ("float32", [0x4049, 0x0000], 3.140625),
        ("string", [0x4142, 0x4300, 0], "ABC"),
        ("string", [0, 0], None),
        ("enum16", [4], 4),
    ],
)
def test_decode_by_type_alone(type_: str, registers: list[int], value: object) -> None:
    assert decode_raw(type_, registers) == value


def test_encode_round_trips_and_refuses_what_does_not_fit() -> None:
    m = model_def(704)
    assert encode(m.points["WSet"], -3000) == [0xFFFF, 0xF448]
    assert encode(m.points["WSet"], None) == [0x8000, 0]
    assert encode(m.points["WMaxLimPctRvrtTms"], 30) == [0, 30]
    assert encode(model_def(1).points["Mn"], "acme")[:3] == [0x6163, 0x6D65, 0]
    with pytest.raises(ValueError, match="WMaxLimPct: 70000 does not fit a SunSpec uint16"):
        encode(m.points["WMaxLimPct"], 70000)
    with pytest.raises(ValueError, match="whole numbers"):
        encode(m.points["WMaxLimPct"], 62.5)
    with pytest.raises(DeviceError, match="not known"):
        model_def(12345)
    assert from_raw(2005, -1) == 200.5 and from_raw(5, 2) == 500.0


def _curves(n_crv: int, n_pt: int) -> dict[str, object]:
    return {
        "NCrv": n_crv,
        "NPt": n_pt,
        "V_SF": -1,
        "Crv": [
            {"ActPt": n_pt, "Pt": [{"V": 1000 + 10 * c + p, "Var": -p} for p in range(n_pt)]}
            for c in range(n_crv)
        ],
    }


def test_nested_curves_are_laid_out_as_pysunspec2_lays_them_out() -> None:
    from tests.sunspec_device import SunSpecDevice

    theirs = SunSpecDevice([(1, {}), (705, _curves(2, 3))])  # not started: only its layout
    dmap = DeviceMap([1, 705], counts={705: {"Crv": 2, "Pt": 3}})
    block = dmap.block(705)
    # 15 registers of fixed points; a curve is 10 registers and 3 points of 2: L = 15 - 2 + 32
    assert block.length == 45 and (dmap.raw(705, "NCrv"), dmap.raw(705, "NPt")) == (2, 3)
    assert block.address_of("Crv[1].Pt[2].V") == 40070 + 15 + 16 + 10 + 2 * 2 == 40115
    for path in ("NPt", "Crv[0].ActPt", "Crv[0].Pt[0].V", "Crv[1].RspTms", "Crv[1].Pt[2].Var"):
        assert block.address_of(path) == theirs.address(705, path), path
    assert len(dmap.registers) == len(theirs.registers)
    for name in ("ID", "L", "NCrv", "NPt"):
        address = block.address_of(name)
        assert dmap.registers[address - 40000] == theirs.read(address)[0], name
    with pytest.raises(ValueError, match="2 repeating groups of variable count"):
        DeviceMap([705], counts={705: 2})
