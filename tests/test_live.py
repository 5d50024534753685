"""The MEG live: cycles on the simulated plant, points on the bus and in the store, alarms."""

import asyncio
import os
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from openmeg.app import LiveMeg
from openmeg.core.bus import Bus
from openmeg.core.clock import SimClock
from openmeg.core.messages import AlarmMessage, ModeChange, PointUpdate
from openmeg.core.points import PointId
from openmeg.core.site import load_site
from openmeg.core.store import Store, sqlite_url
from openmeg.operation.cycle import ProcessImage

T0 = datetime(2026, 6, 1, 12, tzinfo=UTC)


def _meg(bus: Bus, store: Store, **kw: object) -> LiveMeg:
    return LiveMeg(
        load_site("demo"),
        clock=SimClock(T0),
        bus=bus,
        store=store,
        step_s=1.0,
        persist_every_s=30.0,
        horizon_h=1.0,
        **kw,
    )  # type: ignore[arg-type]


async def test_cycles_publish_and_persist(bus: Bus, store: Store) -> None:
    meg = _meg(bus, store)
    soc_updates = await bus.subscribe("meg/demo/der/bess-community/soc")
    await meg.run(asyncio.Event(), max_cycles=90)
    assert meg.status.cycles == 90
    assert meg.status.alarms == {}  # the default controllers run without failure
    assert meg.clock.now() == T0 + timedelta(seconds=90)
    got = [await soc_updates.get(timeout=5) for _ in range(90)]
    assert all(isinstance(m, PointUpdate) and 0.1 <= m.value <= 0.95 for _, m in got)
    stored = store.history(PointId(site="demo", device="bess-community", name="soc"))
    assert [p.ts for p in stored] == [T0 + timedelta(seconds=s) for s in (30, 60, 90)]
    assert stored[-1].value == pytest.approx(got[-1][1].value)  # type: ignore[union-attr]
    states = store.load_states("demo")
    assert states["bess-community"]["soc"] == pytest.approx(stored[-1].value)
    assert "hs1" in states


async def test_state_survives_a_restart(bus: Bus, store: Store) -> None:
    store.save_states("demo", T0, [("bess-community", {"soc": 0.42})])
    meg = _meg(bus, store)
    assert meg.process_image()["bess-community/soc"] == pytest.approx(0.42)


async def test_failing_controller_raises_a_visible_alarm(bus: Bus, store: Store) -> None:
    meg = _meg(bus, store)
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
    meg.cycle.controllers.append(broken)
    await meg.run(asyncio.Event(), max_cycles=3)
    assert meg.status.alarms.keys() == {"broken"}
    _, raised = await alarms.get(timeout=5)
    assert isinstance(raised, AlarmMessage) and raised.active and raised.severity == "critical"
    assert raised.text == "ZeroDivisionError: division by zero in forecast"
    assert meg.status.alarms == {"broken": raised.text}
    [event] = store.events("demo", kind="alarm")
    assert event["source"] == "broken" and event["code"] == "controller_failed"
    broken.fail = False
    await meg.run(asyncio.Event(), max_cycles=4)
    _, cleared = await alarms.get(timeout=5)
    assert isinstance(cleared, AlarmMessage) and not cleared.active
    assert meg.status.alarms == {}


async def test_grid_down_command_islands_the_meg(bus: Bus, store: Store) -> None:
    meg = _meg(bus, store)
    modes = await bus.subscribe("meg/demo/distribution/pcc/mode")
    await meg.run(asyncio.Event(), max_cycles=5)
    meg.set_grid(up=False, duration=timedelta(seconds=20))
    await meg.run(asyncio.Event(), max_cycles=40)
    _, first = await modes.get(timeout=5)
    _, second = await modes.get(timeout=5)
    assert isinstance(first, ModeChange) and first.mode == "island"
    assert isinstance(second, ModeChange) and second.mode == "grid"
    assert (second.ts - first.ts).total_seconds() >= 20
    assert [e["code"] for e in store.events("demo", kind="mode")] == ["island", "grid"]


def test_run_stops_cleanly_on_ctrl_c(tmp_path: Path) -> None:
    db = tmp_path / "live.db"
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
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
            if db.exists():
                try:
                    if store.count_points("demo") > 0:
                        break
                except Exception:  # the schema may not exist yet
                    continue
        else:
            pytest.fail("the live MEG stored nothing within 120 s")
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=60)
        assert proc.returncode == 0, err
        assert "stopped cleanly" in out
        assert store.load_states("demo")["bess-community"]["soc"] > 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        store.close()
