"""The DER data feeder against the simulated devices on real Modbus TCP sockets."""

from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest
from pymodbus.server import ModbusTcpServer
from pymodbus.simulator import DataType, SimData, SimDevice

from openmeg.core.addresses import ModbusAddress
from openmeg.core.bus import Bus
from openmeg.core.clock import SimClock
from openmeg.core.errors import DeviceError
from openmeg.core.messages import AlarmMessage, CommandResult, PointUpdate
from openmeg.core.site import load_site
from openmeg.distribution.discovery import discover
from openmeg.distribution.feeder import DerDataFeeder, Subscription
from openmeg.protocols.modbus import ModbusMaster
from openmeg.sim.live_plant import SimulatedPlant
from openmeg.sim.wire import DeviceServers

T0 = datetime(2026, 6, 1, 16, tzinfo=UTC)


@pytest.fixture
async def plant_and_servers() -> AsyncIterator[tuple[SimulatedPlant, DeviceServers]]:
    site = load_site("demo")
    plant = SimulatedPlant(site, start=T0, step_s=1.0, horizon_h=0.1)
    plant.step()
    servers = DeviceServers(
        site,
        plant,
        now=lambda: plant.time,
        base_port=0,
        only=frozenset({"bess-community", "pv-school", "m-factory", "m-h01"}),
    )
    await servers.start()
    try:
        yield plant, servers
    finally:
        await servers.stop()


def _addr(servers: DeviceServers, device: str) -> tuple[str, int, int]:
    w = next(w for w in servers.plan if w.id == device)
    return w.host, w.port, w.unit


async def _collect(sub: object, n: int) -> list[PointUpdate]:
    out = []
    for _ in range(n):
        _, msg = await sub.get(timeout=5)  # type: ignore[attr-defined]
        assert isinstance(msg, PointUpdate)
        out.append(msg)
    return out


async def test_discovery_maps_points_by_address_only(plant_and_servers) -> None:  # type: ignore[no-untyped-def]
    _, servers = plant_and_servers
    master = ModbusMaster(*_addr(servers, "bess-community"))
    try:
        dev = await discover(master)
    finally:
        master.close()
    assert dev.id == "bess-community" and dev.family == "storage" and dev.base == 40000
    assert [b.model.id for b in dev.models] == [1, 103, 124, 123, 203]
    served = servers.devices["bess-community"].map
    assert dev.point("soc").address == served.block(124).address_of("ChaState") == 40130
    assert dev.point("p_kw").sf_address == served.block(103).address_of("W_SF") == 40085
    assert dev.manufacturer == "openmeg"
    meter = ModbusMaster(*_addr(servers, "m-h01"))  # behind the gateway, by unit id
    try:
        assert (await discover(meter)).id == "m-h01"
    finally:
        meter.close()


async def test_a_device_without_sunspec_is_refused() -> None:
    server = ModbusTcpServer(
        SimDevice(
            id=1, simdata=[SimData(address=0, count=200, values=7, datatype=DataType.REGISTERS)]
        ),
        address=("127.0.0.1", 0),
    )
    await server.serve_forever(background=True)
    port = server.transport.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    master = ModbusMaster("127.0.0.1", port, 1)
    try:
        with pytest.raises(DeviceError, match="no SunSpec device"):
            await discover(master)
    finally:
        master.close()
        await server.shutdown()


async def test_only_changed_subscribed_items_are_delivered(bus: Bus, plant_and_servers) -> None:  # type: ignore[no-untyped-def]
    plant, servers = plant_and_servers
    clock = SimClock(T0)
    feeder = DerDataFeeder("demo", bus, clock, snapshot_every_s=3600, max_gap=8)
    updates = await bus.subscribe("meg/demo/#")
    try:
        for device in ("bess-community", "pv-school"):
            await feeder.add(*_addr(servers, device))
        feeder.subscribe(Subscription(device="bess-community", point="soc"))
        feeder.subscribe(Subscription(device="bess-community", point="p_kw"))
        feeder.subscribe(Subscription(device="pv-school", point="p_kw", deadband=1000.0))
        first = await feeder.poll()
        # battery: W+W_SF in one read, ChaState and ChaState_SF 14 apart in two; PV: one read
        assert (first.reads, first.collected, first.delivered) == (4, 3, 3)
        got = {f"{m.device}/{m.name}": m.value for m in await _collect(updates, 3)}
        image = plant.read()
        assert got["bess-community/soc"] == pytest.approx(image["bess-community/soc"], abs=5e-4)
        assert got["pv-school/p_kw"] == pytest.approx(image["pv-school/p_kw"], abs=0.01)
        await clock.sleep(1)
        second = await feeder.poll()  # the plant has not moved: nothing new travels
        assert (second.reads, second.collected, second.delivered) == (4, 3, 0)
        plant.command("bess-community/p_set_kw", 40.0)  # as if its controller wrote it
        plant.step()
        await clock.sleep(1)
        third = await feeder.poll()
        delivered = await _collect(updates, third.delivered)
        names = sorted(f"{m.device}/{m.name}" for m in delivered)
        assert "bess-community/p_kw" in names and "pv-school/p_kw" not in names  # deadband
        assert [m.value for m in delivered if m.name == "p_kw"] == [pytest.approx(40.0)]
        assert updates.pending() == 0
    finally:
        feeder.close()


async def test_per_point_intervals_and_periodic_snapshot(bus: Bus, plant_and_servers) -> None:  # type: ignore[no-untyped-def]
    _, servers = plant_and_servers
    clock = SimClock(T0)
    feeder = DerDataFeeder("demo", bus, clock, snapshot_every_s=10)
    try:
        await feeder.add(*_addr(servers, "m-factory"))
        feeder.subscribe(Subscription(device="m-factory", point="import_kwh", interval_s=5))
        feeder.subscribe(Subscription(device="m-factory", point="import_kw", interval_s=1))
        counts = []
        for _ in range(12):
            counts.append((await feeder.poll()).collected)
            await clock.sleep(1)
        assert counts == [2, 1, 1, 1, 1, 2, 1, 1, 1, 1, 2, 1]
        # nothing changed in the plant, yet the snapshot at 10 s delivers both again
        assert feeder.delivered_total == 4
    finally:
        feeder.close()


async def test_unreachable_device_alarms_within_three_polls_backs_off_and_recovers(
    bus: Bus,
) -> None:
    site = load_site("demo")
    plant = SimulatedPlant(site, start=T0, step_s=1.0, horizon_h=0.1)
    plant.step()
    servers = DeviceServers(
        site, plant, now=lambda: plant.time, base_port=0, only=frozenset({"pv-h01"})
    )
    [wire] = await servers.start()
    clock = SimClock(T0)
    feeder = DerDataFeeder("demo", bus, clock, poll_period_s=1.0, backoff_max_s=8)
    alarms = await bus.subscribe("meg/demo/operation/alarms/#")
    await feeder.add(wire.host, wire.port, wire.unit)
    feeder.subscribe(Subscription(device="pv-h01", point="p_kw"))
    await feeder.poll()
    await servers.stop()
    master = feeder.links["pv-h01"].device.master
    try:
        attempts = []
        for second in range(1, 30):
            await clock.sleep(1)
            before = master.requests
            report = await feeder.poll()
            attempts.append(master.requests - before)
            if second == 3:
                assert report.failed_devices == ["pv-h01"]
                _, alarm = await alarms.get(timeout=5)
                assert isinstance(alarm, AlarmMessage) and alarm.active
                assert alarm.code == "device_unreachable" and alarm.source == "pv-h01"
        # polls 1-3 try at once; then the waits double (2, 4, 8 s) and stay at the cap
        tried_at = [i + 1 for i, n in enumerate(attempts) if n]
        assert tried_at == [1, 2, 3, 5, 9, 17, 25]
        # the device comes back at the address it had
        back = site.device("pv-h01").model_copy(
            update={"address": ModbusAddress(host=wire.host, port=wire.port)}
        )
        same = site.model_copy(
            update={"devices": tuple(back if d.id == "pv-h01" else d for d in site.devices)}
        )
        servers2 = DeviceServers(same, plant, now=lambda: plant.time, only=frozenset({"pv-h01"}))
        await servers2.start()
        try:
            for _ in range(10):
                await clock.sleep(1)
                if (await feeder.poll()).collected:
                    break
            _, cleared = await alarms.get(timeout=5)
            assert isinstance(cleared, AlarmMessage) and not cleared.active
            assert not feeder.links["pv-h01"].unreachable
        finally:
            await servers2.stop()
    finally:
        feeder.close()


async def test_commands_are_acknowledged_or_failed_with_the_device_answer(
    bus: Bus, plant_and_servers
) -> None:  # type: ignore[no-untyped-def]
    plant, servers = plant_and_servers
    feeder = DerDataFeeder("demo", bus, SimClock(T0))
    results = await bus.subscribe("meg/demo/command-result/#")
    try:
        await feeder.add(*_addr(servers, "bess-community"))
        await feeder.add(*_addr(servers, "pv-school"))
        ok = await feeder.command("bess-community", "p_set_kw", -60.0)
        assert ok.accepted
        plant.step()
        assert plant.read()["bess-community/p_kw"] == pytest.approx(-60.0)
        too_much = await feeder.command("bess-community", "p_set_kw", 200.0)  # 133 % of 150 kW
        assert (
            not too_much.accepted
            and "is -150 .. 150 kW (its charge and discharge" in too_much.reason
        )
        plant.step()
        assert plant.read()["bess-community/p_kw"] == pytest.approx(-60.0)  # unchanged
        limit = await feeder.command("pv-school", "p_limit_pct", 50.0)
        assert limit.accepted
        plant.step()
        assert plant.read()["pv-school/p_kw"] <= 13.5 + 1e-9
        bad = [
            await feeder.command("pv-school", "p_limit_pct", 101.0),
            await feeder.command("pv-school", "p_kw", 1.0),
            await feeder.command("nowhere", "p_kw", 1.0),
        ]
        assert [r.accepted for r in bad] == [False, False, False]
        assert "is 0 .. 100 % of WMax, not 101.0" in bad[0].reason
        assert bad[1].reason == "pv-school/p_kw is read-only; its controls: connected, p_limit_pct"
        assert "unknown device 'nowhere'" in bad[2].reason
        got = [await results.get(timeout=5) for _ in range(6)]
        assert all(isinstance(m, CommandResult) for _, m in got)
    finally:
        feeder.close()
