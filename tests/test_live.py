"""The MEG live: cycles on the simulated plant, points on the bus and in the store, alarms,
commands on the bus, and a clean stop on Ctrl-C."""

import asyncio
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

import pandas as pd
import pytest

from openmeg.app import LiveMeg
from openmeg.core.bus import Bus
from openmeg.core.clock import SimClock
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
from openmeg.core.site import load_site
from openmeg.core.store import Store, sqlite_url
from openmeg.operation.cycle import ProcessImage
from tests.services import free_port

T0 = datetime(2026, 6, 1, 12, tzinfo=UTC)


async def _meg(
    bus: Bus,
    store: Store,
    *,
    start: datetime = T0,
    step_s: float = 1.0,
    persist_every_s: float = 30.0,
    **kw: object,
) -> LiveMeg:
    meg = LiveMeg(
        load_site("demo"),
        clock=SimClock(start),
        bus=bus,
        store=store,
        step_s=step_s,
        persist_every_s=persist_every_s,
        horizon_h=1.0,
        **kw,
    )  # type: ignore[arg-type]
    await meg.start()
    return meg


async def test_cycles_publish_and_persist(bus: Bus, store: Store) -> None:
    meg = await _meg(bus, store)
    soc_updates = await bus.subscribe("meg/demo/der/bess-community/soc")
    registers = await bus.subscribe("meg/demo/customer/m-h01/import_kwh")
    cycle_times = await bus.subscribe("meg/demo/operation/cycle/duration_ms")
    await meg.run(asyncio.Event(), max_cycles=90)
    await meg.stop()
    assert meg.status.cycles == 90
    assert meg.status.alarms == {}  # the default controllers run without failure
    assert meg.plant.time == T0 + timedelta(seconds=90)
    got = [await soc_updates.get(timeout=5) for _ in range(90)]
    assert all(isinstance(m, PointUpdate) and 0.1 <= m.value <= 0.95 for _, m in got)
    _, register = await registers.get(timeout=5)
    assert isinstance(register, PointUpdate) and register.unit == "kWh"
    _, cycle_ms = await cycle_times.get(timeout=5)
    assert isinstance(cycle_ms, PointUpdate) and cycle_ms.unit == "ms" and cycle_ms.value > 0
    stored = store.history(PointId(site="demo", device="bess-community", name="soc"))
    assert [p.ts for p in stored] == [T0 + timedelta(seconds=s) for s in (1, 31, 61, 90)]
    assert stored[-1].value == pytest.approx(got[-1][1].value)  # type: ignore[union-attr]
    states = store.load_states("demo")
    assert states["bess-community"]["soc"] == pytest.approx(stored[-1].value)
    assert "hs1" in states and states["m-factory"]["import_kwh"] > 0


async def test_stop_between_persist_instants_stores_a_last_snapshot(bus: Bus, store: Store) -> None:
    meg = await _meg(bus, store)
    await meg.run(asyncio.Event(), max_cycles=45)
    await meg.stop()
    stored = store.history(PointId(site="demo", device="pcc", name="import_kw"))
    assert [p.ts for p in stored] == [T0 + timedelta(seconds=s) for s in (1, 31, 45)]


async def test_state_survives_a_restart(bus: Bus, store: Store) -> None:
    store.save_states(
        "demo",
        T0,
        [("bess-community", {"soc": 0.42}), ("m-h01", {"import_kwh": 12.5, "export_kwh": 3.0})],
    )
    meg = await _meg(bus, store)
    image = meg.plant.read()
    assert image["bess-community/soc"] == pytest.approx(0.42)
    assert (image["m-h01/import_kwh"], image["m-h01/export_kwh"]) == (12.5, 3.0)


async def test_failing_controller_raises_a_visible_alarm(bus: Bus, store: Store) -> None:
    meg = await _meg(bus, store)
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
    await meg.run(asyncio.Event(), max_cycles=3)
    assert meg.status.alarms.keys() == {"broken"}
    _, raised = await alarms.get(timeout=5)
    assert isinstance(raised, AlarmMessage) and raised.active and raised.severity == "critical"
    assert raised.text == "ZeroDivisionError: division by zero in forecast"
    [event] = store.events("demo", kind="alarm")
    assert event["source"] == "broken" and event["code"] == "controller_failed"
    broken.fail = False
    await meg.run(asyncio.Event(), max_cycles=4)
    _, cleared = await alarms.get(timeout=5)
    assert isinstance(cleared, AlarmMessage) and not cleared.active
    assert meg.status.alarms == {}


async def test_utility_down_and_up_by_command_on_the_bus(bus: Bus, store: Store) -> None:
    meg = await _meg(bus, store)
    modes = await bus.subscribe(mode_topic("demo"))
    results = await bus.subscribe("meg/demo/command-result/#")
    topic = command_topic("demo", "pcc", "utility_available")

    async def command(value: float) -> CommandResult:
        await bus.publish(
            topic,
            CommandMessage(
                site="demo",
                device="pcc",
                name="utility_available",
                value=value,
                ts=T0,
                user="operator-1",
            ),
        )
        while meg.status.cycles < 10_000:
            await meg.run(asyncio.Event(), max_cycles=meg.status.cycles + 1)
            if results.pending():
                _, msg = await results.get()
                assert isinstance(msg, CommandResult)
                return msg
        raise AssertionError("no command result")

    await meg.run(asyncio.Event(), max_cycles=5)
    down = await command(0.0)
    assert down.accepted and down.reason == ""
    await meg.run(asyncio.Event(), max_cycles=meg.status.cycles + 20)
    assert meg.status.mode == "island" and meg.plant.read()["pcc/import_kw"] == 0.0
    up = await command(1.0)
    assert up.accepted
    await meg.run(asyncio.Event(), max_cycles=meg.status.cycles + 120)
    assert meg.status.mode == "grid"
    _, first = await modes.get(timeout=5)
    _, second = await modes.get(timeout=5)
    assert isinstance(first, ModeChange) and first.mode == "island"
    assert isinstance(second, ModeChange) and second.mode == "grid"
    assert [e["code"] for e in store.events("demo", kind="mode")] == ["island", "grid"]
    assert [e["text"] for e in store.events("demo", kind="command")] == [
        "operator-1 set pcc/utility_available = 0.0",
        "operator-1 set pcc/utility_available = 1.0",
    ]


@pytest.mark.parametrize(
    ("device", "name", "value", "reason"),
    [
        (
            "pcc",
            "breaker",
            0.0,
            "no commandable point 'pcc/breaker'; accepted: pcc/switch_command, pcc/utility",
        ),
        (
            "pcc",
            "utility_available",
            2.0,
            "2.0 is out of range for 'utility_available': accepted 0 .. 1",
        ),
        ("pcc", "utility_available", 0.5, "pcc/utility_available takes 0 or 1, got 0.5"),
    ],
)
async def test_bad_commands_are_refused_and_change_nothing(
    bus: Bus, store: Store, device: str, name: str, value: float, reason: str
) -> None:
    meg = await _meg(bus, store)
    results = await bus.subscribe("meg/demo/command-result/#")
    await bus.publish(
        command_topic("demo", device, name),
        CommandMessage(site="demo", device=device, name=name, value=value, ts=T0),
    )
    for _ in range(200):
        await meg.run(asyncio.Event(), max_cycles=meg.status.cycles + 1)
        if results.pending():
            break
    _, result = await results.get(timeout=5)
    assert isinstance(result, CommandResult) and not result.accepted
    assert reason in result.reason
    assert meg.status.commands == 0
    assert meg.plant.read()["pcc/utility_available"] == 1.0 and meg.status.mode == "grid"
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
        assert store.load_states("demo")["bess-community"]["soc"] > 0
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

    site = load_site("demo")
    everything_but = frozenset(d.id for d in site.devices) - {"pv-h10"} | {"pcc"}
    meg = await _meg(bus, store, modbus_port=0, connect=everything_but)
    try:
        assert "pv-h10" not in meg.feeder.links  # type: ignore[union-attr]
        replies = await bus.subscribe(device_added_topic("demo"))
        await meg.run(asyncio.Event(), max_cycles=3)
        w = next(w for w in meg.servers.plan if w.id == "pv-h10")  # type: ignore[union-attr]
        for address in ("nonsense", f"{w.host}:1:1", f"{w.host}:{w.port}:{w.unit}"):
            await bus.publish(
                device_add_topic("demo"), DeviceAdd(site="demo", address=address, ts=T0)
            )
        await meg.run(asyncio.Event(), max_cycles=5)
        answers = [(await replies.get(timeout=5))[1] for _ in range(3)]
        assert all(isinstance(a, DeviceAdded) for a in answers)
        bad_syntax, unreachable, added = answers  # type: ignore[misc]
        assert not bad_syntax.ok and "must be HOST:PORT:UNIT" in bad_syntax.reason
        assert not unreachable.ok and "cannot connect" in unreachable.reason
        assert added.ok and added.device == "pv-h10" and added.models == [1, 103, 123]
        assert "p_kw" in added.points
        await meg.run(asyncio.Event(), max_cycles=40)
        seen = meg.scada.snapshot()["devices"]
        assert seen["pv-h10"]["p_kw"] == pytest.approx(meg.plant.read()["pv-h10/p_kw"], abs=0.01)
        assert seen["sensor-chp1"].keys() >= {"temperature_c", "vibration_mm_s", "noise_db"}
    finally:
        await meg.stop()
    stored = store.history(PointId(site="demo", device="pv-h10", name="p_kw"))
    assert stored and stored[0].ts > T0 + timedelta(seconds=3)
    assert stored[-1].value == pytest.approx(meg.plant.read()["pv-h10/p_kw"], abs=0.01)


async def test_meter_registers_become_mdms_readings_through_the_wire(
    bus: Bus, store: Store
) -> None:
    from openmeg.operation.mdms.store import MeterReadings as Readings

    start = datetime(2026, 6, 1, 11, 50, tzinfo=UTC)
    meg = await _meg(bus, store, start=start, step_s=60.0, persist_every_s=600.0, modbus_port=0)
    try:
        await meg.run(asyncio.Event(), max_cycles=41)  # to 12:31
    finally:
        await meg.stop()
    s = Readings(store).series("m-factory", "import", start, start + timedelta(hours=1))
    t12 = datetime(2026, 6, 1, 12, tzinfo=UTC)
    assert list(s.index) == [pd.Timestamp(t12 + timedelta(minutes=m)) for m in (0, 15)]
    # the plant's own metering of those quarter hours, to the register's resolution (1 Wh)
    e = meg.plant._engine
    p = e.plant
    k0 = p.index.get_loc(t12)
    members = meg.plant._meters.members["m-factory"]
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

    start = datetime(2026, 10, 5, 19, 58, tzinfo=UTC)  # 15:58 in New York on a Monday
    meg = await _meg(bus, store, start=start, step_s=60.0, persist_every_s=600.0)
    prices = await bus.subscribe("meg/demo/customer/h01/price")
    shop = await bus.subscribe("meg/demo/customer/shop/price")
    try:
        await meg.run(asyncio.Event(), max_cycles=5)
    finally:
        await meg.stop()
    got = [(await prices.get(timeout=5))[1] for _ in range(2)]
    assert all(isinstance(m, PriceSignal) for m in got)
    # off-peak at 15:59, the peak period from 16:00 local
    assert [(m.buy_per_kwh, m.period, m.ts.astimezone(UTC).strftime("%H:%M")) for m in got] == [
        (0.11, "period 1", "19:59"),
        (0.28, "period 2", "20:00"),
    ]
    _, flat = await shop.get(timeout=5)
    assert isinstance(flat, PriceSignal) and (flat.buy_per_kwh, flat.sell_per_kwh) == (0.10, 0.03)
    assert shop.pending() == 0  # a flat price is sent once
