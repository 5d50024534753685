"""Fault location, isolation and service restoration over the wire: the simulated field as its
own program (``openmeg sim serve``), the platform (``LiveMeg``) operating it over Modbus TCP,
the fault played through the field's control interface. The outcome is the study's
(``test_flisr.py``) for the same fault: the same switches, in the same order, the same buses dark
after the trip and after the restoration; then the repair and the return to normal, the MEG
cycling throughout. The operator's part and the lockout are played in lockstep with a field in
the same event loop (``tests/field_harness.py``), still over Modbus TCP only."""

import asyncio
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from openmeg.app import LiveMeg
from openmeg.cli.field_process import simulated_field
from openmeg.core.audit import AuditLog
from openmeg.core.bus import InProcessBus
from openmeg.core.clock import SimClock
from openmeg.core.site import load_site
from openmeg.core.store import Store, sqlite_url
from tests.field_harness import LiveSite, live_site
from tests.keys import audit_key, shared_keystore

START = datetime(2026, 6, 10, 16, tzinfo=UTC)
SPEED = 10.0
R_FEEDER = {f"Bus R{i}" for i in range(2, 19)}
SECTION = {f"Bus R{i}" for i in (6, 7, 8, 9, 16, 17)}


async def _until(check: Callable[[], Any], what: str, timeout_s: float = 60.0) -> None:
    """Wait (real time) until ``check()`` holds."""
    deadline = time.monotonic() + timeout_s
    while not await check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.05)


async def test_a_fault_in_the_field_is_isolated_restored_and_repaired_over_the_wire(
    tmp_path: Path,
) -> None:
    site = load_site("demo")
    anchor = time.time()
    store = Store(sqlite_url(tmp_path / "meg.db"))
    store.create_schema()
    bus = InProcessBus()
    async with (
        simulated_field(
            "demo", start=START, anchor_epoch_s=anchor, speed=SPEED, step_s=1.0, base_port=0
        ) as field,
        httpx.AsyncClient(base_url=field.control_url) as http,
    ):
        clock = SimClock(START, speed=SPEED, anchor_epoch_s=anchor)
        meg = LiveMeg(
            site,
            clock=clock,
            bus=bus,
            store=store,
            keystore=shared_keystore(),
            addresses=field.addresses,
            step_s=1.0,
        )
        await meg.start()
        stop = asyncio.Event()
        running = asyncio.create_task(meg.run(stop))
        flisr = meg.restoration

        async def status() -> dict[str, Any]:
            r = await http.get("/field")
            return dict(r.json()["network"])

        async def values() -> dict[str, Any]:
            return dict((await http.get("/field/image")).json()["values"])

        async def phase_is(phase: str) -> bool:
            assert not running.done(), "the MEG stopped cycling"
            return flisr.phase == phase

        try:

            async def switches_heard() -> bool:
                return all(f"{s}/fault_passed" in meg.images.samples for s in flisr.switches)

            await _until(switches_heard, "the platform to read every switch")
            assert (await status())["dark_buses"] == []
            # what the field cannot do is refused and changes nothing
            r = await http.post("/field/fault", json={"line": "Line X"})
            assert r.status_code == 422 and "no line 'Line X'" in r.text
            r = await http.post("/field/fault", json={"line": "Line C3-C4"})
            assert r.status_code == 422 and "put a breaker on its feeder" in r.text
            r = await http.post("/field/fault/clear")
            assert r.status_code == 409 and "no fault" in r.text
            assert (await status())["switching"] == []
            # the fault: the field's protection trips the breaker, the indicators latch
            r = await http.post("/field/fault", json={"line": "Line R6-R7"})
            assert r.status_code == 200, r.text
            assert r.json()["tripped"] == ["cb-r"]
            assert set(r.json()["dark_buses"]) == R_FEEDER
            await _until(lambda: phase_is("isolated"), "the section isolated, the rest restored")
            plan = flisr.plan
            assert plan is not None
            assert plan.indicating == ("cb-r", "sw-r3", "sw-r5")
            assert plan.section_lines == (
                "Line R6-R16",
                "Line R6-R7",
                "Line R7-R8",
                "Line R8-R9",
                "Line R9-R17",
            )
            assert flisr.done == [
                ("sw-r5", "open"),
                ("sw-r9", "open"),
                ("cb-r", "close"),
                ("tie-r18-c20", "close"),
            ]
            network = await status()
            assert [(s["switch"], s["action"]) for s in network["switching"]] == [
                ("cb-r", "trip"),
                ("sw-r5", "open"),
                ("sw-r9", "open"),
                ("cb-r", "close"),
                ("tie-r18-c20", "close"),
            ]
            assert set(network["dark_buses"]) == SECTION

            async def only_isolated() -> bool:  # the SCADA takes it in at the end of the cycle
                return _alarms(meg) == {"section_isolated"}

            await _until(only_isolated, "the SCADA to show the section isolated")

            async def served_as_planned() -> bool:
                v = await values()
                return v["load-h05/p_kw"] == 0.0 and v["load-h09/p_kw"] < 0.0

            # the tie-fed homes (R18) are back, the faulted section's (R16) stay dark
            await _until(served_as_planned, "the physics to follow the switches")
            v = await values()
            assert v["cb-r/switch_closed"] == 1.0 and v["tie-r18-c20/switch_closed"] == 1.0
            assert v["sw-r5/switch_closed"] == 0.0 and v["sw-r5/fault_passed"] == 1.0
            assert v["load-h01/p_kw"] < 0.0 and v["load-h07/p_kw"] == 0.0
            # the repair: the crew resets the indicators; the service returns the network
            r = await http.post("/field/fault/clear", json={})
            assert r.status_code == 200, r.text
            await _until(lambda: phase_is("normal"), "the return to normal")
            network = await status()
            assert [(s["switch"], s["action"]) for s in network["switching"][5:]] == [
                ("sw-r5", "close"),
                ("tie-r18-c20", "open"),
                ("sw-r9", "close"),
            ]
            assert network["dark_buses"] == [] and network["fault"] is None

            async def all_served() -> bool:
                return (await values())["load-h05/p_kw"] < 0.0

            await _until(all_served, "the section's homes supplied again")

            async def no_alarm() -> bool:
                return _alarms(meg) == set()

            await _until(no_alarm, "the SCADA to clear the alarm")
            cycles = meg.status.cycles
            await _until(lambda: _more(meg, cycles), "the MEG to keep cycling")
        finally:
            stop.set()
            await running
            await meg.stop()
    commands = [r for r in AuditLog(store, audit_key()).records() if r.actor == "flisr"]
    assert [(r.target, r.detail["value"]) for r in commands] == [
        ("sw-r5/switch_command", 1.0),
        ("sw-r9/switch_command", 1.0),
        ("cb-r/switch_command", 2.0),
        ("tie-r18-c20/switch_command", 2.0),
        ("sw-r5/switch_command", 2.0),
        ("tie-r18-c20/switch_command", 1.0),
        ("sw-r9/switch_command", 2.0),
    ]
    assert all(r.detail["accepted"] for r in commands)
    events = [(e["kind"], e["code"]) for e in store.events(site="demo") if e["source"] == "flisr"]
    assert [e for e in events if e[0] == "flisr"] == [
        ("flisr", "located"),
        ("flisr", "restored"),
        ("flisr", "repaired"),
        ("flisr", "normal"),
    ]
    assert events.count(("command", "accepted")) == 7
    assert [e for e in events if e[0].startswith("alarm")] == [
        ("alarm", "feeder_fault"),
        ("alarm_clear", "feeder_fault"),
        ("alarm", "section_isolated"),
        ("alarm_clear", "section_isolated"),
    ]
    store.close()


async def _more(meg: LiveMeg, cycles: int) -> bool:
    return meg.status.cycles > cycles + 3


def _alarms(meg: LiveMeg) -> set[str]:
    return {a.code for a in meg.scada.alarms(active_only=True) if a.source == "flisr"}


async def _lockstep(tmp_path: Path) -> LiveSite:
    store = Store(sqlite_url(tmp_path / "lockstep.db"))
    store.create_schema()
    live = await live_site(InProcessBus(), store, start=START)
    await live.step(2)
    return live


async def test_the_operator_hands_the_section_back_by_resetting_its_indicator(
    tmp_path: Path,
) -> None:
    live = await _lockstep(tmp_path)
    meg, gear = live.meg, live.field.plant.switchgear
    try:
        gear.inject("Line R6-R7")
        await live.step(8)
        assert meg.restoration.phase == "isolated" and set(gear.dark_bus_names()) == SECTION
        gear.clear(reset_indicators=False)  # repaired; the indicators left for the operator
        await live.step(3)
        assert meg.restoration.phase == "isolated"
        result = await meg.command("sw-r5", "switch_command", 3, user="operator")
        assert result.accepted, result.reason
        await live.step(8)
        assert meg.restoration.phase == "normal" and gear.dark_bus_names() == []
        assert gear.log[5:] == [
            ("sw-r5", "reset"),  # the operator's
            ("cb-r", "reset"),
            ("sw-r3", "reset"),
            ("sw-r5", "close"),
            ("tie-r18-c20", "open"),
            ("sw-r9", "close"),
        ]
    finally:
        await live.stop()
    audit = [
        (r.actor, r.target, r.detail["value"]) for r in AuditLog(meg.store, audit_key()).records()
    ]
    assert audit[4:7] == [
        ("operator", "sw-r5/switch_command", 3),
        ("flisr", "cb-r/switch_command", 3.0),
        ("flisr", "sw-r3/switch_command", 3.0),
    ]


async def test_a_failed_indicator_mislocates_the_fault_and_the_service_locks_out(
    tmp_path: Path,
) -> None:
    live = await _lockstep(tmp_path)
    meg, gear = live.meg, live.field.plant.switchgear
    flisr = meg.restoration
    try:
        gear.inject("Line R6-R7")
        gear.indicator["sw-r5"] = False  # it failed to latch: the fault looks upstream of it
        await live.step(8)
        assert flisr.plan is not None and flisr.plan.opened == ("sw-r3", "sw-r5")
        # the tie closed onto the fault through sw-r9, which the protection opened
        assert gear.log[-2:] == [("tie-r18-c20", "close"), ("sw-r9", "trip")]
        assert flisr.phase == "locked_out"
        [lockout] = [a for a in meg.scada.alarms(active_only=True) if a.code == "flisr_lockout"]
        assert "sw-r9 opened outside the plan" in lockout.text
        commands = len(flisr.done)
        await live.step(3)
        assert len(flisr.done) == commands  # it does nothing more
        # the repair, and the operator puts the network back by hand
        gear.clear()
        for switch, value in (("sw-r3", 2), ("sw-r5", 2), ("tie-r18-c20", 1), ("sw-r9", 2)):
            result = await meg.command(switch, "switch_command", value, user="operator")
            assert result.accepted, result.reason
        await live.step(2)
        assert flisr.phase == "normal" and _alarms(meg) == set()
        assert gear.dark_bus_names() == []
    finally:
        await live.stop()
