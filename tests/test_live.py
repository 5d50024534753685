"""The MEG live: the platform operating the simulated field over Modbus TCP only; setpoints
written to the devices' own registers, points on the bus and in the store, alarms, commands
on the bus, stale data held safe, and a clean stop on Ctrl-C."""

import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.request
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from openmeg.app import LiveMeg
from openmeg.core.bus import Bus
from openmeg.core.identity import Principal
from openmeg.core.messages import (
    AlarmMessage,
    CommandMessage,
    CommandResult,
    ModeChange,
    PointUpdate,
    command_topic,
    mode_topic,
)
from openmeg.core.points import PointId
from openmeg.core.store import Store, sqlite_url
from openmeg.der import sunspec_map as ssm
from openmeg.operation.cycle import ProcessImage
from tests.field_harness import LiveSite, live_site
from tests.services import free_port

T0 = datetime(2026, 6, 1, 12, tzinfo=UTC)
OPERATOR = Principal(name="operator-1", role="operator")


def authorised(meg: LiveMeg, device: str, name: str, value: float) -> str:
    """An operator's signed authorisation of one command, as an HMI would get it."""
    return meg.authority.sign_command(OPERATOR, device, name, value, datetime.now(UTC))


async def _live(bus: Bus, store: Store, **kw: Any) -> LiveSite:
    kw.setdefault("start", T0)
    kw.setdefault("persist_every_s", 30.0)
    return await live_site(bus, store, **kw)


async def test_setpoints_cross_the_wire_into_the_devices_registers(bus: Bus, store: Store) -> None:
    live = await _live(bus, store)
    meg, field = live.meg, live.field
    soc_updates = await bus.subscribe("meg/demo/der/bess-community/soc")
    cycle_times = await bus.subscribe("meg/demo/operation/cycle/duration_ms")
    try:
        await live.step(90)
        # the plant takes the registers as they are at its next step: the last cycle's writes
        # (the community battery's setpoint may move by a register step from cycle to cycle,
        # the PCC's reading being to 0.1 kW and its rate to 0.1 % of 150 kW)
        field.step()
    finally:
        await live.stop()
    assert not hasattr(meg, "plant")  # the platform holds no reference to the plant
    assert meg.status.cycles == 90 and meg.status.alarms == {} and meg.status.held == {}
    # every battery's setpoint was written on the wire and held in its model 124 registers
    for battery in ("bess-community", "bess-h01", "bess-h05"):
        assert live.writes(battery) >= 2
        dev = field.servers.devices[battery]
        rates = {n: dev.map.value(ssm.STORAGE, n) or 0.0 for n in ("OutWRte", "InWRte")}
        rates["StorCtl_Mod"] = float(dev.map.raw(ssm.STORAGE, "StorCtl_Mod") or 0)
        held_kw = ssm.storage_setpoint_kw(rates, dev.rating_w)
        asked = meg.runtime.last_setpoints[f"{battery}/p_set_kw"]
        assert held_kw == pytest.approx(meg.writer.clip(f"{battery}/p_set_kw", asked), abs=0.06)
        assert dev.map.raw(ssm.STORAGE, "InOutWRte_RvrtTms") == 30  # it reverts by itself
        assert field.plant.read()[f"{battery}/p_kw"] == pytest.approx(held_kw, abs=0.06)
    # the community battery covers the MEG's net demand at the PCC
    assert abs(field.plant.read()["pcc/import_kw"]) < 1.0
    _, soc = await soc_updates.get(timeout=5)
    assert isinstance(soc, PointUpdate) and 0.1 <= soc.value <= 0.95
    _, cycle_ms = await cycle_times.get(timeout=5)
    assert isinstance(cycle_ms, PointUpdate) and cycle_ms.unit == "ms" and cycle_ms.value > 0
    stored = store.history(PointId(site="demo", device="bess-community", name="soc"))
    ts = [p.ts for p in stored]  # sampled every 30 s of the values' own time
    assert ts and all(T0 <= t <= T0 + timedelta(seconds=90) for t in ts)


async def test_unchanged_setpoints_are_kept_alive_inside_the_revert_timeout(
    bus: Bus, store: Store
) -> None:
    live = await _live(bus, store, revert_s=30)
    try:
        await live.step(5)
        before = live.writes("chp1")
        await live.step(30)  # the CHP's setpoint (off, at noon in June) does not change
        kept = live.writes("chp1") - before
    finally:
        await live.stop()
    # written again every 10 s (a third of the revert timeout), not every cycle: 3 times in
    # 30 s, each time three requests (its revert timeout, the limit, the limit's enable)
    assert kept == 3 * 3
    assert live.field.reverted == []


async def test_a_device_that_loses_the_platform_reverts_by_itself(bus: Bus, store: Store) -> None:
    live = await _live(bus, store, revert_s=30)
    try:
        await live.step(5)
        assert live.field.plant.read()["bess-community/p_kw"] != 0.0
        await live.meg.stop()  # the platform is gone; the field goes on
        for _ in range(40):
            live.field.step()
            live.clock.advance(1.0)
    finally:
        await live.field.stop()
    assert [(d, c) for _, d, c in live.field.reverted if d == "bess-community"] == [
        ("bess-community", "storage")
    ]
    assert live.field.plant.read()["bess-community/p_kw"] == 0.0  # idle


async def test_failing_controller_raises_a_visible_alarm(bus: Bus, store: Store) -> None:
    live = await _live(bus, store)
    meg = live.meg
    alarms = await bus.subscribe("meg/demo/operation/alarms/#")

    class Broken:
        name = "broken"
        priority = 99
        fail = True

        def run(self, image: ProcessImage) -> dict[str, float]:
            if self.fail:
                raise ZeroDivisionError("division by zero in forecast")
            return {}

    broken = Broken()
    meg.runtime.cycle.controllers.append(broken)
    try:
        await live.step(3)
        assert meg.status.alarms.keys() == {"broken"}
        _, raised = await alarms.get(timeout=5)
        assert isinstance(raised, AlarmMessage) and raised.active and raised.severity == "critical"
        assert raised.text == "ZeroDivisionError: division by zero in forecast"
        [event] = store.events("demo", kind="alarm")
        assert event["source"] == "broken" and event["code"] == "controller_failed"
        broken.fail = False
        await live.step(4)
    finally:
        await live.stop()
    _, cleared = await alarms.get(timeout=5)
    assert isinstance(cleared, AlarmMessage) and not cleared.active
    assert meg.status.alarms == {}


async def test_stale_device_is_held_safe_with_an_alarm_and_the_rest_keeps_cycling(
    bus: Bus, store: Store
) -> None:
    live = await _live(bus, store)
    meg = live.meg
    alarms = await bus.subscribe("meg/demo/operation/alarms/#")
    try:
        await live.step(5)
        await live.field.servers.silence("bess-h01")  # it stops answering
        stale_by = None
        for cycle in range(1, 4):
            await live.step()
            sample = meg.images.samples.get("bess-h01/p_kw")
            if stale_by is None and sample is not None and sample.quality.value == "stale":
                stale_by = cycle
        writes_other = live.writes("bess-h05")
        await live.step(20)
    finally:
        await live.stop()
    assert stale_by is not None and stale_by <= 3  # within 3 poll periods
    assert "bess-h01" in meg.status.held and "stale" in meg.status.held["bess-h01"]
    assert meg.runtime.last_setpoints["bess-h01/p_set_kw"] == 0.0  # held idle
    seen = []
    while alarms.pending():
        _, msg = await alarms.get()
        assert isinstance(msg, AlarmMessage)
        seen.append((msg.source, msg.code, msg.active))
    assert ("bess-h01", "device_unreachable", True) in seen
    assert ("bess-h01", "controller_holds", True) in seen
    # the other devices keep their cycle: bess-h05 is still written and read
    assert live.writes("bess-h05") >= writes_other
    assert meg.status.cycles == 28 and "bess-h05" not in meg.status.held
    assert meg.images.samples["bess-h05/p_kw"].quality.value == "good"


async def test_utility_outage_from_the_field_islands_the_meg(bus: Bus, store: Store) -> None:
    live = await _live(bus, store)
    meg = live.meg
    modes = await bus.subscribe(mode_topic("demo"))
    try:
        await live.step(5)
        live.field.plant.command("pcc/utility_available", 0.0)  # the field's scenario control
        await live.step(20)
        assert meg.status.mode == "island"
        assert live.field.plant.read()["pcc/import_kw"] == 0.0
        live.field.plant.command("pcc/utility_available", 1.0)
        await live.step(120)
        assert meg.status.mode == "grid"
    finally:
        await live.stop()
    _, first = await modes.get(timeout=5)
    _, second = await modes.get(timeout=5)
    assert isinstance(first, ModeChange) and first.mode == "island"
    assert isinstance(second, ModeChange) and second.mode == "grid"
    assert [e["code"] for e in store.events("demo", kind="mode")] == ["island", "grid"]


async def test_the_pcc_switch_opens_and_closes_by_command_on_the_bus(
    bus: Bus, store: Store
) -> None:
    live = await _live(bus, store)
    meg = live.meg
    results = await bus.subscribe("meg/demo/command-result/#")

    async def command(value: float) -> CommandResult:
        await bus.publish(
            command_topic("demo", "pcc", "switch_command"),
            CommandMessage(
                site="demo",
                device="pcc",
                name="switch_command",
                value=value,
                ts=T0,
                authorisation=authorised(meg, "pcc", "switch_command", value),
            ),
        )
        await live.step()
        _, msg = await results.get(timeout=5)
        assert isinstance(msg, CommandResult)
        return msg

    try:
        await live.step(5)
        opened = await command(1.0)
        assert opened.accepted and opened.reason == ""
        await live.step(20)
        assert meg.status.mode == "island"
        closed = await command(2.0)
        assert closed.accepted
        await live.step(120)
        assert meg.status.mode == "grid"
    finally:
        await live.stop()
    assert live.writes("pcc") == 2
    assert [e["text"] for e in store.events("demo", kind="command")] == [
        "operator-1 set pcc/switch_command = 1.0: done",
        "operator-1 set pcc/switch_command = 2.0: done",
    ]


@pytest.mark.parametrize(
    ("device", "name", "value", "reason"),
    [
        ("pcc", "breaker", 0.0, "pcc cannot be commanded 'breaker'; its controls: switch_command"),
        ("pcc", "switch_command", 5.0, "5.0 is out of range for pcc/switch_command"),
        ("pcc", "switch_command", 1.5, "pcc/switch_command takes a whole number, got 1.5"),
        ("nowhere", "p_set_kw", 1.0, "unknown device 'nowhere'"),
        ("bess-h01", "p_set_kw", 50.0, "50.0 kW is out of bess-h01's rating"),
    ],
)
async def test_bad_commands_are_refused_and_change_nothing(
    bus: Bus, store: Store, device: str, name: str, value: float, reason: str
) -> None:
    live = await _live(bus, store)
    results = await bus.subscribe("meg/demo/command-result/#")
    try:
        await live.step(2)
        # the batteries and the CHP are written by their controllers; nothing else may be
        quiet = [d for d in live.field.servers.devices if not d.startswith("bess-") and d != "chp1"]
        writes = {d: live.writes(d) for d in quiet}
        await bus.publish(
            command_topic("demo", device, name),
            CommandMessage(
                site="demo",
                device=device,
                name=name,
                value=value,
                ts=T0,
                authorisation=authorised(live.meg, device, name, value),
            ),
        )
        await live.step()
        _, result = await results.get(timeout=5)
        assert isinstance(result, CommandResult) and not result.accepted
        assert reason in result.reason, result.reason
        assert live.meg.status.commands == 0
        assert {d: live.writes(d) for d in quiet} == writes
        assert live.meg.status.mode == "grid"
    finally:
        await live.stop()
    [event] = store.events("demo", kind="command")
    assert event["code"] == "rejected" and event["severity"] == "warning"


def test_run_stops_cleanly_on_ctrl_c(tmp_path: Path) -> None:
    db = tmp_path / "live.db"
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    api_port = free_port()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "openmeg",
            "run",
            "--site",
            "demo",
            "--speed",
            "120",
            "--no-status",
            "--modbus-port",
            "0",
            "--api-port",
            str(api_port),
            "--store",
            sqlite_url(db),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        cwd=tmp_path,
    )
    store = Store(sqlite_url(db))
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            time.sleep(0.5)
            try:
                if store.count_points("demo") > 0:
                    break
            except Exception:  # the file or its schema may not exist yet
                continue
        else:
            pytest.fail("the live MEG stored nothing within 120 s")
        with urllib.request.urlopen(f"http://127.0.0.1:{api_port}/health", timeout=5) as r:
            assert json.load(r) == {"status": "ok", "site": "demo"}
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=60)
        assert proc.returncode == 0, err
        assert "stopped cleanly" in out
        # no default password: the first run made one and showed it once
        assert len(re.findall(r"first run: user admin, password \S{20,}", err)) == 1
        # the field ran as a program of its own, and stopped with the platform
        [field_pid] = re.findall(r"simulated field \(process (\d+)\)", err)
        assert int(field_pid) != proc.pid
        with pytest.raises(ProcessLookupError):
            os.kill(int(field_pid), 0)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        store.close()


async def test_a_device_added_by_address_reaches_feeder_and_store(bus: Bus, store: Store) -> None:
    from openmeg.core.messages import (
        DeviceAdd,
        DeviceAdded,
        device_add_topic,
        device_added_topic,
    )

    live = await _live(bus, store, without=frozenset({"pv-h10"}))
    meg = live.meg
    try:
        assert "pv-h10" not in meg.feeder.links
        replies = await bus.subscribe(device_added_topic("demo"))
        await live.step(3)
        w = next(w for w in live.field.plan if w.id == "pv-h10")
        closed = f"{w.host}:{free_port()}:1"  # allowed, but nothing answers there
        for address in ("nonsense", closed, f"{w.host}:{w.port}:{w.unit}"):
            token = meg.authority.sign_device_add(OPERATOR, address, datetime.now(UTC))
            await bus.publish(
                device_add_topic("demo"),
                DeviceAdd(site="demo", address=address, ts=T0, authorisation=token),
            )
        await live.step(5)
        answers = [(await replies.get(timeout=5))[1] for _ in range(3)]
        assert all(isinstance(a, DeviceAdded) for a in answers)
        bad_syntax, unreachable, added = answers  # type: ignore[misc]
        assert not bad_syntax.ok and "must be HOST:PORT:UNIT" in bad_syntax.reason
        assert not unreachable.ok and "cannot connect" in unreachable.reason
        assert added.ok and added.device == "pv-h10" and added.models == [1, 103, 123]
        assert "p_kw" in added.points
        await live.step(40)
        truth = live.field.plant.read()
        seen = meg.scada.snapshot()["devices"]
        assert seen["pv-h10"]["p_kw"] == pytest.approx(truth["pv-h10/p_kw"], abs=0.01)
        assert seen["sensor-chp1"].keys() >= {"temperature_c", "vibration_mm_s", "noise_db"}
    finally:
        await live.stop()
    stored = store.history(PointId(site="demo", device="pv-h10", name="p_kw"))
    assert stored and stored[0].ts >= T0 + timedelta(seconds=3)
    assert stored[-1].value == pytest.approx(truth["pv-h10/p_kw"], abs=0.01)


async def test_meter_registers_become_mdms_readings_through_the_wire(
    bus: Bus, store: Store
) -> None:
    from openmeg.operation.mdms.store import MeterReadings as Readings

    start = datetime(2026, 6, 1, 11, 50, tzinfo=UTC)
    live = await _live(bus, store, start=start, step_s=60.0, persist_every_s=600.0)
    try:
        await live.step(41)  # to 12:31
        assert live.meg.edge.total == 0, live.meg.edge.last  # nothing of its own refused
    finally:
        await live.stop()
    s = Readings(store).series("m-factory", "import", start, start + timedelta(hours=1))
    t12 = datetime(2026, 6, 1, 12, tzinfo=UTC)
    assert list(s.index) == [pd.Timestamp(t12 + timedelta(minutes=m)) for m in (0, 15)]
    # the plant's own metering of those quarter hours, to the register's resolution (1 Wh)
    e = live.field.plant._engine
    p = e.plant
    k0 = p.index.get_loc(t12)
    members = live.field.plant._meters.members["m-factory"]
    rows = {
        "ren": e.out.ren,
        "load": e.out.load,
        "bat": e.out.bat,
        "chp": e.out.chp,
        "fc": e.out.fc,
    }
    sign = {"ren": -1.0, "load": 1.0, "bat": -1.0, "chp": -1.0, "fc": -1.0}
    net = sum(sign[f] * rows[f][i] for f, i in members)
    expected = [max(float(x), 0.0) for x in net[k0 : k0 + 30]]
    per_interval = [sum(expected[j : j + 15]) / 60 for j in (0, 15)]
    assert s.tolist() == pytest.approx(per_interval, abs=0.0011)
    regs = Readings(store).registers("m-factory", "import", t12, t12 + timedelta(minutes=30))
    assert list(regs.index) == [pd.Timestamp(t12 + timedelta(minutes=m)) for m in (0, 15, 30)]
    assert regs.diff().dropna().tolist() == pytest.approx(s.tolist(), abs=1e-9)


async def test_prices_reach_each_customers_premises_when_they_change(
    bus: Bus, store: Store
) -> None:
    from openmeg.core.messages import PriceSignal

    start = datetime(2026, 10, 5, 13, 58, tzinfo=UTC)  # 15:58 in Rome (CEST) on a Monday
    live = await _live(bus, store, start=start, step_s=60.0, persist_every_s=600.0)
    prices = await bus.subscribe("meg/demo/customer/h01/price")
    shop = await bus.subscribe("meg/demo/customer/shop/price")
    try:
        await live.step(5)
    finally:
        await live.stop()
    got = [(await prices.get(timeout=5))[1] for _ in range(2)]
    assert all(isinstance(m, PriceSignal) for m in got)
    # off-peak at 15:58 (the first cycle), the peak period from 16:00 local
    assert [(m.buy_per_kwh, m.period, m.ts.astimezone(UTC).strftime("%H:%M")) for m in got] == [
        (0.11, "period 1", "13:58"),
        (0.28, "period 2", "14:00"),
    ]
    _, flat = await shop.get(timeout=5)
    assert isinstance(flat, PriceSignal) and (flat.buy_per_kwh, flat.sell_per_kwh) == (0.10, 0.03)
    assert shop.pending() == 0  # a flat price is sent once


async def test_an_operators_command_is_not_overtaken_by_the_write_phase(
    bus: Bus, store: Store
) -> None:
    import asyncio

    live = await _live(bus, store)
    meg = live.meg
    try:
        await live.step(3)
        key = "bess-h01/p_set_kw"
        assert meg.runtime.last_setpoints[key] != -2.0
        # the operator's command and a cycle's write of the same point, at the same moment
        result, report = await asyncio.gather(
            meg.command("bess-h01", "p_set_kw", -2.0, "operator-1"),
            meg.writer.write({key: 4.0}, meg.clock.now()),
        )
        assert result.accepted and report.failed == {} and report.written == 0
        await live.step(5)  # the controllers keep off the point while the operator holds it
        dev = live.field.servers.devices["bess-h01"]
        rates = {n: dev.map.value(ssm.STORAGE, n) or 0.0 for n in ("OutWRte", "InWRte")}
        rates["StorCtl_Mod"] = float(dev.map.raw(ssm.STORAGE, "StorCtl_Mod") or 0)
        assert ssm.storage_setpoint_kw(rates, dev.rating_w) == pytest.approx(-2.0)
        assert live.field.plant.read()["bess-h01/p_kw"] == pytest.approx(-2.0)
        assert key in meg.writer.manual and meg.status.held == {}
    finally:
        await live.stop()
