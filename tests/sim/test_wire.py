"""The simulated devices on the wire, read and written by independent Modbus masters:
Debian's mbpoll (libmodbus) and pysunspec2's SunSpec client."""

import asyncio
import re
import shutil
import socket
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest

from openmeg.core.site import load_site
from openmeg.der import sunspec_map as ssm
from openmeg.protocols.sunspec import model_def
from openmeg.sim.live_plant import SimulatedPlant
from openmeg.sim.wire import DeviceServers, WireDevice

# model lengths L as the SunSpec information model specification gives them
SPEC_LENGTH = {1: 66, 103: 50, 123: 24, 124: 24, 203: 105, 64900: 9, 64901: 6, 64902: 7, 64903: 4}
MBPOLL = shutil.which("mbpoll")


@pytest.fixture
async def wire() -> AsyncIterator[tuple[SimulatedPlant, DeviceServers, list[WireDevice]]]:
    if MBPOLL is None:
        pytest.fail("mbpoll is not installed: apt-get install mbpoll (Debian)")
    site = load_site("demo")
    plant = SimulatedPlant(
        site, start=datetime(2026, 6, 1, 16, tzinfo=UTC), step_s=1.0, horizon_h=0.1
    )
    for _ in range(3):
        plant.step()
    servers = DeviceServers(site, plant, now=lambda: plant.time, base_port=0)
    plan = await servers.start()
    try:
        yield plant, servers, plan
    finally:
        await servers.stop()


async def mbpoll(w: WireDevice, address: int, count: int = 1, *values: int) -> tuple[int, str]:
    """Run mbpoll against ``w`` with PDU addressing; return its exit code and output."""
    args = [
        "-m",
        "tcp",
        "-a",
        str(w.unit),
        "-p",
        str(w.port),
        "-0",
        "-r",
        str(address),
        "-t",
        "4",
        "-1",
        "-o",
        "2",
    ]
    if not values:
        args += ["-c", str(count)]
    proc = await asyncio.create_subprocess_exec(
        MBPOLL or "mbpoll",
        *args,
        w.host,
        *map(str, values),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    out, _ = await proc.communicate()
    return proc.returncode or 0, out.decode()


def registers(output: str) -> list[int]:
    return [int(v) for v in re.findall(r"^\[\d+\]:\s+(-?\d+)", output, re.M)]


def as_int16(v: int) -> int:
    return v - 65536 if v >= 32768 else v


async def test_every_device_serves_sunspec_marker_and_model_chain(wire) -> None:  # type: ignore[no-untyped-def]
    _, _, plan = wire
    # transfer switch, DERs, heat store, sensors, meters, line switches and the tie
    assert len(plan) == 1 + 14 + 1 + 3 + 22 + 5
    for w in plan:
        rc, out = await mbpoll(w, 40000, 4)
        assert rc == 0, out
        assert registers(out) == [0x5375, 0x6E53, 1, 66]
        address, chain = 40002, []
        while True:
            rc, out = await mbpoll(w, address, 2)
            model_id, length = registers(out)
            if model_id == 0xFFFF:
                assert length == 0
                break
            assert length == SPEC_LENGTH[model_id]
            chain.append(model_id)
            address += 2 + length
        assert tuple(chain) == w.models


async def test_values_match_the_simulator(wire) -> None:  # type: ignore[no-untyped-def]
    plant, servers, plan = wire
    image = plant.read()
    by_id = {w.id: w for w in plan}
    bess = servers.devices["bess-community"].map
    rc, out = await mbpoll(by_id["bess-community"], bess.block(124).address_of("ChaState"))
    assert rc == 0
    assert registers(out) == [round(image["bess-community/soc"] * 100 / 0.1)]
    pv = servers.devices["pv-school"].map
    w_sf = pv.scale_factor(103, "W")
    rc, out = await mbpoll(by_id["pv-school"], pv.block(103).address_of("W"), 2)
    assert rc == 0
    raw_w, raw_sf = registers(out)
    assert as_int16(raw_sf) == w_sf == 0
    assert raw_w == round(image["pv-school/p_kw"] * 1000 / 10**w_sf) and raw_w > 0
    meter = servers.devices["m-factory"].map
    rc, out = await mbpoll(by_id["m-factory"], meter.block(203).address_of("TotWhImp"), 2)
    assert rc == 0
    high, low = registers(out)
    assert (high << 16) + low == round(image["m-factory/import_kwh"] * 1000)


async def test_a_control_written_by_mbpoll_reaches_the_plant(wire) -> None:  # type: ignore[no-untyped-def]
    plant, servers, plan = wire
    w = next(x for x in plan if x.id == "bess-community")
    storage = servers.devices[w.id].map.block(124)
    # discharge at 20.0 % of WChaMax (150 kW): 30 kW
    rc, out = await mbpoll(w, storage.address_of("OutWRte"), 1, 200)
    assert rc == 0, out
    rc, out = await mbpoll(w, storage.address_of("StorCtl_Mod"), 1, ssm.DISCHARGE_BIT)
    assert rc == 0, out
    plant.step()  # the device holds what was written into its controls
    assert plant.read()["bess-community/p_kw"] == pytest.approx(30.0)
    controls = servers.devices[w.id].map.block(123)
    rc, out = await mbpoll(w, controls.address_of("Conn"), 1, 0)
    assert rc == 0, out
    plant.step()
    assert plant.read()["bess-community/p_kw"] == 0.0


async def test_pysunspec2_scans_a_device_and_reads_scaled_values(wire) -> None:  # type: ignore[no-untyped-def]
    import sunspec2.modbus.client as client

    plant, _, plan = wire
    w = next(x for x in plan if x.id == "bess-community")

    def scan() -> tuple[list[int], float, str]:
        dev = client.SunSpecModbusClientDeviceTCP(slave_id=w.unit, ipaddr=w.host, ipport=w.port)
        try:
            dev.scan()
            models = [m for m in dev.models if isinstance(m, int)]
            soc = dev.models["storage_basic"][0].ChaState.cvalue
            serial = dev.common[0].SN.value
        finally:
            dev.close()
        return models, soc, serial

    models, soc, serial = await asyncio.to_thread(scan)
    assert models == [1, 103, 124, 123, 203]
    assert soc == pytest.approx(plant.read()["bess-community/soc"] * 100, abs=0.05)
    assert serial == "bess-community"


async def test_bad_requests_get_modbus_exceptions_and_change_nothing(wire) -> None:  # type: ignore[no-untyped-def]
    plant, servers, plan = wire
    w = next(x for x in plan if x.id == "bess-community")
    rc, out = await mbpoll(w, 30000, 2)
    assert rc != 0 and "Illegal data address" in out
    inverter = servers.devices[w.id].map.block(103)
    rc, out = await mbpoll(w, inverter.address_of("W"), 1, 1000)  # a read-only point
    assert rc != 0 and "Illegal data address" in out
    storage = servers.devices[w.id].map.block(124)
    before = list(servers.devices[w.id].map.registers)
    rc, out = await mbpoll(w, storage.address_of("OutWRte"), 1, 2000)  # 200 %: out of range
    assert rc != 0 and "Illegal data value" in out
    assert servers.devices[w.id].map.registers == before
    plant.step()  # nothing was held: the battery idles as it did
    assert plant.read()["bess-community/p_kw"] == 0.0
    # a malformed frame: the server drops it and keeps serving
    with socket.create_connection((w.host, w.port), timeout=2) as s:
        s.sendall(b"\x00\x01\x00\x00\x00\xff\x01\x03garbage")
        s.sendall(b"\xde\xad\xbe\xef")
    rc, out = await mbpoll(w, 40000, 2)
    assert rc == 0 and registers(out) == [0x5375, 0x6E53]
    assert model_def(124).points["OutWRte"].writable


async def test_a_line_switch_is_commanded_and_its_protection_read_by_mbpoll(wire) -> None:  # type: ignore[no-untyped-def]
    plant, servers, plan = wire
    by_id = {w.id: w for w in plan}
    block = servers.devices["sw-r5"].map.block(ssm.LINE_SWITCH)
    typ, pos, fpi, cmd = (block.address_of(n) for n in ("Typ", "Pos", "FPI", "Cmd"))
    rc, out = await mbpoll(by_id["sw-r5"], typ, 4)
    assert rc == 0 and registers(out) == [2, 1, 0, 0]  # sectionalizer, closed, clear, none
    assert plant.switchgear.inject("Line R6-R7") == ["cb-r"]
    rc, out = await mbpoll(by_id["cb-r"], typ, 4)
    assert rc == 0 and registers(out) == [1, 0, 1, 0]  # breaker, tripped, latched
    rc, out = await mbpoll(by_id["sw-r5"], cmd, 1, 1)  # open
    assert rc == 0, out
    rc, out = await mbpoll(by_id["sw-r5"], typ, 4)
    assert rc == 0 and registers(out) == [2, 0, 1, 1]  # open, latched; Cmd reads back 1
    rc, out = await mbpoll(by_id["sw-r5"], cmd, 1, 3)  # reset the indicator
    assert rc == 0 and plant.read()["sw-r5/fault_passed"] == 0.0
    rc, out = await mbpoll(by_id["sw-r5"], cmd, 1, 4)
    assert rc != 0 and "Illegal data value" in out
    rc, out = await mbpoll(by_id["sw-r5"], pos, 1, 1)  # the position is read-only
    assert rc != 0 and "Illegal data address" in out
    assert fpi == pos + 1
