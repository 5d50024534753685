"""SunSpec controls written to devices on 127.0.0.1 and read back from the devices' own
registers, decoded by hand."""

from collections.abc import AsyncIterator
from typing import Any

import pytest

from openmeg.core.errors import CommandError
from openmeg.der.sunspec_controls import ControlPlan
from openmeg.distribution.discovery import Discovered, discover
from openmeg.protocols.modbus import ModbusMaster
from tests.sunspec_device import BATTERY_700, SINGLE_PHASE, STORAGE_124, SunSpecDevice


@pytest.fixture
async def started() -> AsyncIterator[list[tuple[SunSpecDevice, ModbusMaster]]]:
    out: list[tuple[SunSpecDevice, ModbusMaster]] = []
    yield out
    for device, master in out:
        master.close()
        await device.stop()


async def _device(
    started: list[tuple[SunSpecDevice, ModbusMaster]], models: list[tuple[int, dict[str, Any]]]
) -> tuple[SunSpecDevice, Discovered]:
    device = await SunSpecDevice(models).start()
    master = ModbusMaster("127.0.0.1", device.port, 1)
    started.append((device, master))
    return device, await discover(master)


async def _send(dev: Discovered, plan: ControlPlan) -> bool:
    """Write a plan as the write phase does, read it back and confirm it."""
    for address, registers in plan.requests():
        await dev.master.write(address, registers)
    read: dict[int, int] = {}
    for address, count in plan.readback:
        values = await dev.master.read(address, count)
        read.update(zip(range(address, address + count), values, strict=True))
    return plan.confirms(read)


def _int32(high: int, low: int) -> int:
    value = (high << 16) | low
    return value - (1 << 32) if value & 0x80000000 else value


async def test_model_123_limit_connect_and_power_factor(started) -> None:  # type: ignore[no-untyped-def]
    device, dev = await _device(started, SINGLE_PHASE)
    # 123 at 40150: Conn +4, WMaxLimPct +5, WMaxLimPct_RvrtTms +7, WMaxLim_Ena +9,
    # OutPFSet +10, OutPFSet_Ena +14
    plan = dev.plan("p_limit_pct", 37.5, revert_s=60)
    assert plan.requests() == [(40157, [60]), (40155, [375]), (40159, [1])]
    assert plan.revert_s == 60
    assert await _send(dev, plan)
    assert device.writes == [(40157, [60]), (40155, [375]), (40159, [1])]
    assert device.read(40155)[0] * 10**-1 == 37.5  # WMaxLimPct_SF -1
    assert device.read(40159) == [1] and device.read(40157) == [60]

    plan = dev.plan("connected", 0)
    assert plan.requests() == [(40154, [0])] and plan.revert_s is None  # no Conn_RvrtTms
    assert await _send(dev, plan) and device.read(40154) == [0]

    plan = dev.plan("pf_set", -0.95)
    assert plan.requests() == [(40160, [(-95) & 0xFFFF]), (40164, [1])]
    assert await _send(dev, plan)
    raw = device.read(40160)[0]
    assert (raw - 65536 if raw & 0x8000 else raw) / 100 == -0.95  # OutPFSet_SF -2

    writes = len(device.writes)
    for point, value, message in [
        ("p_limit_pct", 100.5, r"p_limit_pct is 0 \.\. 100 % of WMax, not 100.5"),
        ("p_limit_pct", float("nan"), "needs a finite number, got nan"),
        ("connected", 0.5, "connected is 0 .disconnect. or 1 .connect., not 0.5"),
        ("p_set_kw", 1.0, "cannot be commanded 'p_set_kw'; it serves: connected, p_limit_pct"),
    ]:
        with pytest.raises(CommandError, match=message):
            dev.plan(point, value)
    assert len(device.writes) == writes  # refused before anything was written


async def test_model_124_charge_and_discharge_rates(started) -> None:  # type: ignore[no-untyped-def]
    device, dev = await _device(started, STORAGE_124)
    assert dev.family == "storage"
    assert dev.ratings.w_charge_max_w == dev.ratings.w_discharge_max_w == 150000.0
    # 124 at 40122: StorCtl_Mod +5, OutWRte +12, InWRte +13, InOutWRte_RvrtTms +15
    plan = dev.plan("p_set_kw", -60.0, revert_s=20)
    assert plan.requests() == [(40137, [20]), (40134, [0, 400]), (40127, [1])]
    assert await _send(dev, plan)
    out_rte, in_rte = device.read(40134, 2)
    mode = device.read(40127)[0]
    # charging (bit 0 of StorCtl_Mod) at InWRte 40.0 % of WChaMax 150 kW: 60 kW
    assert (mode, out_rte, in_rte * 10**-1 / 100 * 1500 * 10**2) == (1, 0, 60000.0)

    plan = dev.plan("p_set_kw", 30.0)
    assert plan.requests() == [(40134, [200, 0]), (40127, [2])]  # discharging at 20.0 %
    assert await _send(dev, plan)
    with pytest.raises(CommandError, match=r"p_set_kw is -150 \.\. 150 kW .* not 151"):
        dev.plan("p_set_kw", 151.0)


async def test_model_704_setpoint_limit_and_power_factor(started) -> None:  # type: ignore[no-untyped-def]
    device, dev = await _device(started, BATTERY_700)
    at = dev.map.block(704).address
    assert at == device.address(704, "ID")
    # 704: WMaxLimPctEna +14, WMaxLimPct +15, WMaxLimPctRvrt +16, WMaxLimPctEnaRvrt +17,
    # WMaxLimPctRvrtTms +18 (uint32), WSetEna +22, WSetMod +23, WSet +24 (int32),
    # WSetRvrt +26 (int32), WSetEnaRvrt +30, WSetRvrtTms +31 (uint32), PFWInjEna +2,
    # PFWInj.PF +59, PFWInj.Ext +60
    plan = dev.plan("p_set_kw", -30.0, revert_s=30)
    assert plan.requests() == [
        (at + 26, [0, 0]),  # revert to 0 W ...
        (at + 30, [0, 0, 30]),  # ... disabled, after 30 s
        (at + 23, [1, 0xFFFF, 0xF448]),  # WATTS, -3000 x 10 W
        (at + 22, [1]),
    ]
    assert await _send(dev, plan)
    assert device.read(at + 23) == [1]  # WSetMod WATTS
    assert _int32(*device.read(at + 24, 2)) * 10**1 == -30000  # W, charging 30 kW
    assert device.read(at + 22) == [1] and device.read(at + 31, 2) == [0, 30]

    plan = dev.plan("p_limit_pct", 62.5)
    assert plan.requests() == [(at + 15, [625]), (at + 14, [1])]
    assert await _send(dev, plan)
    assert device.read(at + 15)[0] / 10 == 62.5

    plan = dev.plan("p_limit_pct", 80.0, revert_s=10)
    assert plan.requests()[0] == (at + 16, [1000, 0, 0, 10])  # back to 100 %, disabled

    plan = dev.plan("pf_set", -0.9)
    assert plan.requests() == [(at + 59, [90, 1]), (at + 2, [1])]  # UNDER_EXCITED
    assert await _send(dev, plan)

    device.registers[at + 15 - device.base] = 500  # the device took 50 % instead
    plan = dev.plan("p_limit_pct", 62.5)
    read = {at + 15: 500, at + 14: 1}
    assert not plan.confirms(read)

    writes = len(device.writes)
    for point, value, message in [
        ("p_set_kw", 45.5, r"p_set_kw is -40 \.\. 45 kW"),
        ("p_set_kw", float("inf"), "needs a finite number"),
        ("pf_set", 0.75, "rated down to 0.8 over-excited"),
        ("pf_set", 0.0, "not 0"),
        ("connected", 1.0, "it serves: p_limit_pct, p_set_kw, pf_set"),
    ]:
        with pytest.raises(CommandError, match=message):
            dev.plan(point, value)
    with pytest.raises(CommandError, match="revert timeout is 1 to 65534 s"):
        dev.plan("p_limit_pct", 50.0, revert_s=0)
    assert len(device.writes) == writes
