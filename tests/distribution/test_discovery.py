"""Discovery of any SunSpec device, against devices laid out by pysunspec2 on 127.0.0.1."""

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import pytest

from openmeg.core.bus import InProcessBus
from openmeg.core.clock import SimClock
from openmeg.core.errors import CommandError
from openmeg.distribution.discovery import Discovered, PointAddress, discover
from openmeg.distribution.feeder import DerDataFeeder, Subscription
from openmeg.protocols.modbus import ModbusMaster
from openmeg.protocols.sunspec import decode_raw, from_raw
from tests.sunspec_device import BATTERY_700, COMMON, SINGLE_PHASE, WITH_MPPT, SunSpecDevice


async def _discover(device: SunSpecDevice) -> tuple[Discovered, ModbusMaster]:
    master = ModbusMaster("127.0.0.1", device.port, device.unit)
    return await discover(master), master


@pytest.fixture
async def devices() -> AsyncIterator[list[SunSpecDevice]]:
    started: list[SunSpecDevice] = []
    yield started
    for d in started:
        await d.stop()


async def _serve(
    started: list[SunSpecDevice], models: list[tuple[int, dict[str, Any]]]
) -> SunSpecDevice:
    device = await SunSpecDevice(models).start()
    started.append(device)
    return device


async def read_point(master: ModbusMaster, p: PointAddress) -> float | None:
    """A point's value as the feeder computes it: registers, scale factor, factor."""
    raw = decode_raw(p.type, await master.read(p.address, p.size))
    sf = decode_raw("sunssf", await master.read(p.sf_address, 1)) if p.sf_address else 0
    assert isinstance(sf, int)
    return None if not isinstance(raw, int | float) else from_raw(raw, sf) * p.factor


async def test_a_single_phase_inverter_with_nameplate_is_an_inverter(devices) -> None:  # type: ignore[no-untyped-def]
    device = await _serve(devices, SINGLE_PHASE)
    dev, master = await _discover(device)
    try:
        assert (dev.id, dev.family, dev.reason, dev.manufacturer) == (
            "sp-0042",
            "inverter",
            None,
            "acme",
        )
        assert [b.model.id for b in dev.models] == [1, 101, 120, 123]
        # 1 at 40002 (L 66), 101 at 40070 (L 50), 120 at 40122 (L 26), 123 at 40150
        assert [b.address for b in dev.models] == [40002, 40070, 40122, 40150]
        names = {p.point: p for p in dev.points}
        assert set(names) == {
            "p_kw", "frequency_hz", "temperature_c", "voltage_v", "energy_kwh",
            "p_limit_pct", "connected", "pf_set",
        }  # fmt: skip
        assert names["p_kw"].address == 40070 + 14 == device.address(101, "W")
        assert names["p_kw"].sf_address == 40085
        assert names["p_limit_pct"].address == 40155 == device.address(123, "WMaxLimPct")
        assert names["connected"].address == 40154 and names["connected"].writable
        values = {n: await read_point(master, p) for n, p in names.items() if not p.writable}
        assert values == {
            "p_kw": 4990 * 0.001,
            "frequency_hz": 5002 / 100,
            "temperature_c": 412 / 10,
            "voltage_v": 2301 / 10,
            "energy_kwh": 123456 * 0.001,
        }
        assert dev.ratings.w_max_w == dev.ratings.w_rating_w == 5000.0  # 120 WRtg 500 x 10
        assert dev.ratings.w_charge_max_w is None
    finally:
        master.close()


async def test_a_700_series_battery_without_a_meter_is_storage(devices) -> None:  # type: ignore[no-untyped-def]
    device = await _serve(devices, BATTERY_700)
    dev, master = await _discover(device)
    try:
        assert (dev.family, dev.reason) == ("storage", None)
        assert [b.model.id for b in dev.models] == [1, 701, 702, 704, 802]
        names = {p.point: p for p in dev.points}
        assert {n for n, p in names.items() if p.writable} == {"p_limit_pct", "p_set_kw", "pf_set"}
        assert (names["soc"].model, names["soc"].name) == (802, "SoC")
        assert names["soc"].address == device.address(802, "SoC")
        assert (names["p_set_kw"].model, names["p_set_kw"].name) == (704, "WSet")
        values = {n: await read_point(master, p) for n, p in names.items() if not p.writable}
        assert values == {
            "p_kw": -125 * 100 * 0.001,  # charging 12.5 kW
            "frequency_hz": 5000 / 100,
            "temperature_c": 305 / 10,
            "voltage_v": 2300 / 10,
            "soc": 6250 / 100 * 0.01,
            "energy_kwh": 987654 * 0.001,
            "energy_in_kwh": 1234567 * 0.001,
        }
        r = dev.ratings
        assert (r.w_max_w, r.w_rating_w) == (50000.0, 50000.0)
        assert (r.w_charge_max_w, r.w_discharge_max_w) == (40000.0, 45000.0)  # 702 first
        assert r.energy_wh == 100000.0  # 802 WHRtg 1000 x 10^2
        assert (r.pf_min_over, r.pf_min_under) == (0.8, 0.85)
    finally:
        master.close()


async def test_a_device_serving_only_the_common_model_is_monitored_only(devices) -> None:  # type: ignore[no-untyped-def]
    device = await _serve(devices, [(1, {**COMMON, "SN": "gw-1"})])
    dev, master = await _discover(device)
    master.close()
    assert (dev.id, dev.family, dev.points, dev.monitored_only) == ("gw-1", "unknown", (), True)
    assert dev.reason is not None and dev.reason.startswith(
        "it serves only the common model 1, no measurement model openmeg reads (101, 102, 103"
    )
    with pytest.raises(CommandError, match="gw-1 is monitored only: it serves only the common"):
        dev.plan("p_limit_pct", 50.0)


async def test_storage_without_an_ac_measurement_is_monitored_only(devices) -> None:  # type: ignore[no-untyped-def]
    device = await _serve(devices, [BATTERY_700[0], BATTERY_700[4]])
    dev, master = await _discover(device)
    master.close()
    assert dev.family == "storage" and dev.reason is not None
    assert "storage model(s) 802 but no AC measurement model" in dev.reason
    assert [p.point for p in dev.points] == ["soc"]  # still monitored


async def test_mppt_modules_are_read_where_pysunspec2_reads_them(devices) -> None:  # type: ignore[no-untyped-def]
    import sunspec2.modbus.client as client

    device = await _serve(devices, WITH_MPPT)
    dev, master = await _discover(device)
    try:
        mppt = dev.map.block(160)
        assert (mppt.address, mppt.counts, mppt.length) == (40122, {"module": 2}, 48)
        names = {p.point: p for p in dev.points if p.point.startswith("mppt")}
        assert sorted(names) == sorted(
            f"mppt{i}_{s}" for i in (1, 2) for s in ("dc_a", "dc_v", "dc_kw", "dc_kwh")
        )
        # module i starts at 40122 + 10 + 20 i; DCA is 1 + 8 into it (after ID and IDStr)
        assert names["mppt1_dc_a"].address == 40141 == device.address(160, "module[0].DCA")
        assert names["mppt2_dc_a"].address == 40161 == device.address(160, "module[1].DCA")
        assert names["mppt2_dc_kwh"].address == 40164 == device.address(160, "module[1].DCWH")
        ours = {n: await read_point(master, p) for n, p in names.items()}
    finally:
        master.close()

    def scan() -> dict[str, float]:
        d = client.SunSpecModbusClientDeviceTCP(slave_id=1, ipaddr="127.0.0.1", ipport=device.port)
        try:
            d.scan()
            modules = d.models["mppt"][0].module
            out = {}
            for i, m in enumerate(modules, start=1):
                out[f"mppt{i}_dc_a"] = m.DCA.cvalue
                out[f"mppt{i}_dc_v"] = m.DCV.cvalue
                out[f"mppt{i}_dc_kw"] = m.DCW.cvalue / 1000
                out[f"mppt{i}_dc_kwh"] = m.DCWH.cvalue / 1000
            return out
        finally:
            d.close()

    theirs = await asyncio.to_thread(scan)
    assert ours == pytest.approx(theirs, abs=1e-12)
    assert (ours["mppt1_dc_a"], ours["mppt2_dc_v"], ours["mppt2_dc_kw"]) == (8.12, 379.0, 3.028)

    feeder = DerDataFeeder("t", InProcessBus(), SimClock(datetime(2026, 6, 1, tzinfo=UTC)))
    try:
        await feeder.add("127.0.0.1", device.port, 1)
        feeder.subscribe(Subscription(device="sp-0042", point="mppt*"))
        report = await feeder.poll()
        assert report.delivered == 8
        table = {k.split("/")[1]: item.value for k, item in feeder.table.items()}
        assert table == pytest.approx(ours, abs=1e-12)
    finally:
        feeder.close()


async def test_curve_counts_are_read_from_the_device(devices) -> None:  # type: ignore[no-untyped-def]
    curves = {
        "NCrv": 2,
        "NPt": 3,
        "V_SF": -1,
        "Crv": [{"Pt": [{"V": 1000 + 10 * c + p} for p in range(3)]} for c in range(2)],
    }
    device = await _serve(devices, [(1, {**COMMON, "SN": "vv-1"}), (705, curves)])
    dev, master = await _discover(device)
    master.close()
    block = dev.map.block(705)
    assert (block.counts, block.length) == ({"Crv": 2, "Pt": 3}, 45)
    assert dev.map.value(705, "Crv[1].Pt[2].V") == 101.2  # 1012 x 10^-1
    assert dev.monitored_only  # a volt-var curve alone is nothing openmeg operates


async def test_a_legacy_common_model_of_65_registers_is_read(devices) -> None:  # type: ignore[no-untyped-def]
    device = SunSpecDevice([(1, {**COMMON, "SN": "old-1"}), SINGLE_PHASE[1]])
    pad = 2 + 2 + 65  # marker, ID, L, then the 66th register of model 1 is its Pad
    del device.registers[pad], device.writable[pad]
    device.registers[3] = 65
    devices.append(await device.start())
    dev, master = await _discover(device)
    master.close()
    assert [(b.model.id, b.address, b.length) for b in dev.models] == [
        (1, 40002, 65),
        (101, 40069, 50),
    ]
    assert "Pad" not in dev.map.block(1).points
    assert (dev.id, dev.family, dev.point("p_kw").address) == ("old-1", "inverter", 40069 + 14)
