"""Devices added to a running MEG by their address alone: a battery inverter the platform was
not written with, built here from pysunspec2's model definitions (1, 701, 702, 704, 802, no
203), is discovered, operated by the self-consumption controller through its 700-series
controls, audited, listed, and connected again after a restart; a single-phase 101 inverter
and a device serving only the common model give their documented results; none stops the
MEG."""

from datetime import UTC, datetime

import pytest

from openmeg.app import LiveMeg
from openmeg.core.audit import AuditLog
from openmeg.core.bus import InProcessBus
from openmeg.core.identity import Principal
from openmeg.core.messages import (
    AlarmMessage,
    DeviceAdd,
    DeviceAdded,
    device_add_topic,
    device_added_topic,
)
from openmeg.core.site import load_site
from openmeg.core.store import Store, sqlite_url
from tests.field_harness import LiveSite, addresses, live_site
from tests.keys import audit_key, shared_keystore
from tests.sunspec_device import BATTERY_700, COMMON, SINGLE_PHASE, SunSpecDevice

T0 = datetime(2026, 6, 1, 12, tzinfo=UTC)
OPERATOR = Principal(name="operator-1", role="operator")
INVERTER_700 = [
    (1, {**COMMON, "SN": "inv-700"}),
    *[(m, values) for m, values in BATTERY_700 if m in (701, 702, 704)],
]
"""A PV inverter of the IEEE 1547-2018 generation: measurements, capacity and controls."""


def int32(regs: list[int]) -> int:
    v = (regs[0] << 16) | regs[1]
    return v - (1 << 32) if v >= 1 << 31 else v


async def _add(live: LiveSite, address: str) -> DeviceAdded:
    bus = live.meg.bus
    replies = await bus.subscribe(device_added_topic("demo"))
    token = live.meg.authority.sign_device_add(OPERATOR, address, datetime.now(UTC))
    add = DeviceAdd(site="demo", address=address, ts=T0, authorisation=token)
    await bus.publish(device_add_topic("demo"), add)
    await live.step()
    _, reply = await replies.get(timeout=5)
    await bus.unsubscribe(replies)
    assert isinstance(reply, DeviceAdded)
    return reply


async def test_a_700_series_battery_added_by_address_is_operated_through_its_own_controls(
    tmp_path: object,
) -> None:
    store = Store(sqlite_url(tmp_path / "meg.db"))  # type: ignore[operator]
    store.create_schema()
    bus = InProcessBus()
    live = await live_site(bus, store, start=T0)
    battery = await SunSpecDevice(BATTERY_700).start()
    try:
        await live.step(3)
        reply = await _add(live, f"127.0.0.1:{battery.port}:1")
        assert reply.ok and reply.device == "bat-7" and reply.reason == ""
        assert reply.models == [1, 701, 702, 704, 802]
        assert {"p_kw", "soc", "p_set_kw"} <= set(reply.points)
        await live.step(5)
        meg = live.meg
        asked = meg.runtime.last_setpoints["bat-7/p_set_kw"]
        # its share of the PCC's net demand, by rating: 45 kW of (150 + 45) kW
        image = meg.images.image(meg.clock.now())
        net = image["pcc/import_kw"] + image["bess-community/p_kw"] + image["bat-7/p_kw"]
        assert image["bat-7/p_kw"] == -12.5 and image["bat-7/soc"] == pytest.approx(0.625)
        assert asked == pytest.approx(net * 45.0 / 195.0, abs=1e-6)
        # written when it moves by more than the write phase's 50 W tolerance
        written = meg.writer.last["bat-7/p_set_kw"].value
        assert written == pytest.approx(min(max(asked, -40.0), 45.0), abs=0.05)
        # the setpoint as the device itself holds it: 704 WSet in W (WSet_SF 1: 10 W), enabled
        wset = int32(battery.read(battery.address(704, "WSet"), 2)) * 10.0
        assert wset == pytest.approx(written * 1000.0, abs=5.0)
        assert battery.read(battery.address(704, "WSetEna")) == [1]
        assert battery.read(battery.address(704, "WSetMod")) == [1]  # WATTS
        assert battery.read(battery.address(704, "WSetRvrtTms"), 2) == [0, 30]
        assert meg.status.held.get("bat-7") is None and meg.status.cycles == 9
        [record] = [
            r for r in AuditLog(store, audit_key()).records(limit=100) if r.action == "device_add"
        ]
        assert record.target == "bat-7" and record.detail["ok"] is True
        assert record.actor == "operator-1"
        asset = meg.assets.assets["bat-7"]
        assert (asset.origin, asset.family, asset.monitored_only) == ("added", "storage", None)
    finally:
        await live.meg.stop()
    # a restart of the platform connects it again, from the store
    meg = LiveMeg(
        load_site("demo"),
        clock=live.clock,
        bus=bus,
        store=store,
        keystore=shared_keystore(),
        addresses=addresses(live.field),
    )
    await meg.start()
    try:
        assert "bat-7" in meg.feeder.links
        assert meg.assets.assets["bat-7"].origin == "added"
        writes = len(battery.writes)
        live.meg = meg
        await live.step(2)
        assert len(battery.writes) > writes  # it is operated again
    finally:
        await live.stop()
        await battery.stop()
        store.close()


@pytest.mark.parametrize(
    ("models", "ok", "reason"),
    [
        (SINGLE_PHASE, True, ""),
        (INVERTER_700, True, ""),
        (BATTERY_700, True, ""),
        (
            [(1, {**COMMON, "SN": "lonely-1"})],
            True,
            "monitored only: it serves only the common model 1, no measurement model",
        ),
    ],
    ids=["single-phase-101", "700-series-inverter", "700-series-battery", "common-model-only"],
)
async def test_devices_add_gives_the_documented_result_and_the_meg_runs_on(
    tmp_path: object, models: list[tuple[int, dict[str, object]]], ok: bool, reason: str
) -> None:
    store = Store(sqlite_url(tmp_path / "meg.db"))  # type: ignore[operator]
    store.create_schema()
    bus = InProcessBus()
    alarms = await bus.subscribe("meg/demo/operation/alarms/#")
    live = await live_site(bus, store, start=T0)
    device = await SunSpecDevice(models).start()
    try:
        await live.step(2)
        reply = await _add(live, f"127.0.0.1:{device.port}:1")
        assert reply.ok is ok and reply.reason.startswith(reason), reply.reason
        await live.step(5)
        assert live.meg.status.cycles == 8 and live.meg.status.alarms == {}
        seen = []
        while alarms.pending():
            _, msg = await alarms.get()
            assert isinstance(msg, AlarmMessage)
            seen.append((msg.source, msg.code))
        if reason:
            assert (reply.device, "monitored_only") in seen
            assert live.meg.assets.assets[reply.device].monitored_only
        else:
            assert all(code != "monitored_only" for _, code in seen)
    finally:
        await live.stop()
        await device.stop()
        store.close()
