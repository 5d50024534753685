"""The simulated field as a separate program (``openmeg sim serve``) and the platform in this
process: every setpoint of the control cycle arrives at the simulated devices as Modbus writes
(the devices count them), the platform holds no reference to the plant, and the islanding
scenario is played through the field's control interface."""

import asyncio
import gc
import os
import sys
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from openmeg.app import LiveMeg
from openmeg.cli.field_process import FieldProcess, simulated_field
from openmeg.core.bus import InProcessBus
from openmeg.core.clock import SimClock
from openmeg.core.messages import ModeChange, mode_topic
from openmeg.core.site import load_site
from openmeg.core.store import Store, sqlite_url
from openmeg.protocols.bacnet_client import BacnetClient
from tests.keys import shared_keystore

T0 = datetime(2026, 6, 1, 12, tzinfo=UTC)
SPEED = 4.0


def reachable_modules(root: object, limit: int = 500_000) -> set[str]:
    """The modules of the types of every object reachable from ``root``, not going through
    modules, classes or the globals of functions (which reach everything imported)."""
    module_dicts = {id(m.__dict__) for m in list(sys.modules.values()) if m is not None}
    seen: set[int] = set()
    todo = [root]
    out: set[str] = set()
    while todo and len(seen) < limit:
        o = todo.pop()
        if id(o) in seen or id(o) in module_dicts or isinstance(o, type | type(sys)):
            continue
        seen.add(id(o))
        out.add(type(o).__module__)
        todo.extend(gc.get_referents(o))
    return out


async def _platform(tmp_path: Path, field: FieldProcess, anchor: float) -> LiveMeg:
    store = Store(sqlite_url(tmp_path / "meg.db"))
    store.create_schema()
    meg = LiveMeg(
        load_site("demo"),
        clock=SimClock(T0, speed=SPEED, anchor_epoch_s=anchor),
        bus=InProcessBus(),
        store=store,
        keystore=shared_keystore(),
        addresses=field.addresses,
    )
    await meg.start()
    return meg


@pytest.fixture
async def field() -> AsyncIterator[tuple[FieldProcess, float]]:
    anchor = time.time()
    async with simulated_field(
        "demo", start=T0, anchor_epoch_s=anchor, speed=SPEED, step_s=1.0, base_port=0
    ) as f:
        yield f, anchor


async def _field_status(f: FieldProcess) -> dict[str, Any]:
    async with httpx.AsyncClient(base_url=f.control_url, timeout=10) as c:
        r = await c.get("/field")
        r.raise_for_status()
        return r.json()  # type: ignore[no-any-return]


async def test_every_setpoint_crosses_the_wire_to_the_separate_field(
    tmp_path: Path, field: tuple[FieldProcess, float]
) -> None:
    f, anchor = field
    assert f.pid != os.getpid()
    meg = await _platform(tmp_path, f, anchor)
    try:
        await meg.run(asyncio.Event(), max_cycles=20)
        status = await _field_status(f)
    finally:
        await meg.stop()
        meg.store.close()
    received = {d["id"]: d["writes"] for d in status["devices"]}
    sent = dict(meg.feeder.writes_sent)
    # every write request the platform sent, and nothing else, reached the field's devices
    assert sent == {d: n for d, n in received.items() if n}
    assert {"bess-community", "bess-h01", "bess-h05", "chp1"} <= set(sent)
    assert sum(d["refused"] for d in status["devices"]) == 0
    assert meg.writer.writes_total > 0 and meg.status.held == {}
    # the platform holds no reference to the plant: nothing of openmeg.sim is reachable
    assert not {m for m in reachable_modules(meg) if m.startswith("openmeg.sim")}
    assert len(meg.feeder.links) == len(status["devices"]) == 46


async def test_islanding_played_through_the_fields_control_interface(
    tmp_path: Path, field: tuple[FieldProcess, float]
) -> None:
    f, anchor = field
    meg = await _platform(tmp_path, f, anchor)
    modes = await meg.bus.subscribe(mode_topic("demo"))
    stop = asyncio.Event()
    runner = asyncio.create_task(meg.run(stop))
    try:
        async with httpx.AsyncClient(base_url=f.control_url, timeout=10) as c:
            await asyncio.sleep(1.0)
            r = await c.post("/field/utility", json={"available": False})
            assert r.status_code == 200
            _, islanded = await modes.get(timeout=20)
            assert isinstance(islanded, ModeChange) and islanded.mode == "island"
            assert meg.status.mode == "island"
            r = await c.post("/field/utility", json={"available": True})
            assert r.status_code == 200
            _, back = await modes.get(timeout=60)
            assert isinstance(back, ModeChange) and back.mode == "grid"
            bad = await c.post("/field/utility", json={"available": "maybe"})
            assert bad.status_code == 422 and "true or false" in bad.text
        assert [e["code"] for e in meg.store.events("demo", kind="mode")] == ["island", "grid"]
    finally:
        stop.set()
        await runner
        await meg.stop()
        meg.store.close()


async def test_the_field_announces_where_each_bas_answers_and_it_answers_there(
    field: tuple[FieldProcess, float],
) -> None:
    f, _ = field
    site = load_site("demo")
    assert sorted(f.bas) == ["bas-linden", "bas-office"]
    for bas in site.bas:
        host, port = f.bas[bas.id]
        assert host == "127.0.0.1" and port not in (0, bas.port)  # base port 0: free ports
        async with BacnetClient(bas, host=host, port=port) as client:
            values = await client.read_many([f"{e.id}.{p.name}" for e, p, _ in bas.objects()])
        assert len(values) == len(bas.objects()) == 29
        assert values[f"{bas.equipment[1].id}.cop"] > 0  # the heat pump's physics behind it
