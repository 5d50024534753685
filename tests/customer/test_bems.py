"""The premises' energy management on the wire: the demo office's BAS served over BACnet/IP by
the simulated building plant, polled, checked, published, commanded and alarmed."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from openmeg.core.audit import AuditLog
from openmeg.core.bas_scenario import BasEvent
from openmeg.core.bus import InProcessBus, Subscription
from openmeg.core.clock import SimClock
from openmeg.core.errors import CommandError
from openmeg.core.messages import AlarmMessage, PointUpdate
from openmeg.core.site import load_site
from openmeg.core.store import Store
from openmeg.customer.bems import Bems
from openmeg.protocols.bacnet import BacnetServer
from openmeg.protocols.bacnet_client import BacnetClient
from openmeg.sim.physics.building import BuildingPlant

SITE = load_site("demo")
BAS = SITE.bas[0]  # bas-office
T0 = datetime(2026, 1, 14, 9, tzinfo=UTC)  # 10:00 in Rome: occupied
FIRE = BasEvent(
    equipment="fire-1",
    point="alarm",
    start=T0 + timedelta(minutes=30),
    end=T0 + timedelta(minutes=60),
)


def f32(x: float) -> float:
    """What a BACnet REAL carries of ``x``."""
    return float(np.float32(x))


@pytest.fixture
def store(sqlite_store: Store) -> Store:
    return sqlite_store


@pytest.fixture
def audit(store: Store) -> AuditLog:
    return AuditLog(store, b"k" * 32)


@pytest.fixture
def plant() -> BuildingPlant:
    p = BuildingPlant(BAS, timezone=SITE.site.timezone, events=[FIRE])
    p.step(T0, 60.0, 5.0)
    return p


@pytest.fixture
async def server(plant: BuildingPlant) -> AsyncIterator[BacnetServer]:
    async with BacnetServer(BAS, values=plant.read, command=plant.command, port=0) as s:
        yield s


@pytest.fixture
async def bus() -> AsyncIterator[InProcessBus]:
    b = InProcessBus()
    try:
        yield b
    finally:
        await b.close()


@pytest.fixture
async def bems(
    server: BacnetServer, bus: InProcessBus, audit: AuditLog, store: Store
) -> AsyncIterator[Bems]:
    client = BacnetClient(BAS, port=server.port, timeout_s=0.3)
    b = Bems(
        "rome",
        BAS,
        client=client,
        bus=bus,
        clock=SimClock(T0),
        audit=audit,
        timezone=SITE.site.timezone,
        store=store,
        poll_every_s=60.0,
    )
    await b.start()
    try:
        yield b
    finally:
        await b.stop()


def drain(sub: Subscription) -> list[tuple[str, object]]:
    out = []
    while sub.pending():
        out.append(sub.get_nowait())
    return out


async def test_a_poll_publishes_every_point_as_the_plant_gives_it(
    bems: Bems, bus: InProcessBus, plant: BuildingPlant
) -> None:
    sub = await bus.subscribe("meg/rome/customer/#")
    checked = await bems.poll()
    assert checked is not None and checked.bad == {}
    got = {f"{m.device}.{m.name}": m for _, m in drain(sub) if isinstance(m, PointUpdate)}
    assert len(got) == 10 + 7 + 4 + 4 + 2 + 2 == len(BAS.objects())
    assert {k: m.value for k, m in got.items()} == {k: f32(v) for k, v in plant.read().items()}
    # hand-checked: the site file's defaults the plant starts from
    assert got["ahu-1.space_temp_setpoint_c"].value == 21.0
    assert got["ahu-1.occupied_from_h"].value == 7.0 and got["ahu-1.fan_on"].value == 1.0
    assert got["ahu-1.fan_speed_pct"].unit == "%" and got["fire-1.alarm"].unit == "1"
    assert sub.pending() == 0
    frame = bems.series.frame(60.0)
    assert frame.shape == (1, 29) and frame["ahu-1.fan_speed_pct"].iloc[0] == 80.0


async def test_a_setpoint_command_changes_the_plant_is_read_back_and_audited(
    bems: Bems, plant: BuildingPlant, audit: AuditLog
) -> None:
    done = await bems.command("ahu-1", "space_temp_setpoint_c", 22.5, actor="olga")
    assert (done.value, done.readback, done.actor) == (22.5, 22.5, "olga")
    assert plant.read()["ahu-1.space_temp_setpoint_c"] == 22.5
    done = await bems.command("light-open", "scene", 2, actor="olga", reason="dim")
    assert plant.read()["light-open.scene"] == 2.0
    done = await bems.command("ahu-1", "occupied_to_h", 18.5, actor="olga")
    assert plant.read()["ahu-1.occupied_to_h"] == 18.5
    records = [r for r in audit.records() if r.action == "bas_command"]
    assert [(r.actor, r.target) for r in records] == [
        ("olga", "rome/ahu-1/space_temp_setpoint_c"),
        ("olga", "rome/light-open/scene"),
        ("olga", "rome/ahu-1/occupied_to_h"),
    ]


@pytest.mark.parametrize(
    ("equipment", "point", "value", "why"),
    [
        ("ahu-1", "space_temp_setpoint_c", 35.0, "takes 16..28 degC, not 35"),
        ("ahu-1", "space_temp_setpoint_c", float("nan"), "finite number"),
        ("ahu-1", "space_temp_setpoint_c", float("inf"), "finite number"),
        ("ahu-1", "fan_kw", 1.0, "read-only"),
        ("fire-1", "alarm", 0.0, "read-only"),
        ("light-open", "scene", 2.5, "whole number"),
        ("light-open", "scene", 5.0, "takes 1..4"),
        ("ahu-9", "fan_on", 1.0, "no equipment 'ahu-9'"),
        ("ahu-1", "rocket", 1.0, "no point 'rocket'"),
    ],
)
async def test_a_bad_command_is_refused_audited_and_changes_nothing(
    bems: Bems,
    plant: BuildingPlant,
    server: BacnetServer,
    audit: AuditLog,
    equipment: str,
    point: str,
    value: float,
    why: str,
) -> None:
    before = plant.read()
    with pytest.raises(CommandError, match=why):
        await bems.command(equipment, point, value, actor="olga")
    assert plant.read() == before
    assert list(server.writes) == []
    (record,) = audit.records()
    assert (record.action, record.actor) == ("bas_command_refused", "olga")
    assert record.target == f"rome/{equipment}/{point}"
    # and the service keeps running
    assert (await bems.poll()) is not None


async def test_a_signed_command_is_carried_out_once_for_who_signed_it(
    bems: Bems, plant: BuildingPlant, audit: AuditLog
) -> None:
    from openmeg.core.command_auth import CommandAuthority
    from openmeg.core.identity import Principal

    now = datetime(2026, 12, 2, tzinfo=UTC)
    authority = CommandAuthority(b"s" * 32, site="rome")
    olga = Principal(name="olga", role="operator")
    token = authority.sign_command(olga, "hp-1", "water_setpoint_c", 42.0, now)
    done = await bems.command_signed(authority, token, "hp-1", "water_setpoint_c", 42.0, now=now)
    assert done.actor == "olga" and plant.read()["hp-1.water_setpoint_c"] == 42.0
    with pytest.raises(CommandError, match="used already"):
        await bems.command_signed(authority, token, "hp-1", "water_setpoint_c", 42.0, now=now)
    other = authority.sign_command(olga, "hp-1", "water_setpoint_c", 42.0, now)
    with pytest.raises(CommandError, match="another command"):
        await bems.command_signed(authority, other, "hp-1", "water_setpoint_c", 50.0, now=now)
    with pytest.raises(CommandError, match="no authorisation"):
        await bems.command_signed(authority, "", "hp-1", "water_setpoint_c", 50.0, now=now)
    assert plant.read()["hp-1.water_setpoint_c"] == 42.0
    assert [(r.action, r.actor) for r in audit.records()] == [
        ("bas_command", "olga"),
        ("bas_command_refused", "olga (unverified)"),
        ("bas_command_refused", "olga (unverified)"),
        ("bas_command_refused", "unauthenticated"),
    ]


async def test_the_fire_alarm_is_raised_once_and_cleared_once(
    bems: Bems, bus: InProcessBus, plant: BuildingPlant, store: Store
) -> None:
    sub = await bus.subscribe("meg/rome/operation/alarms/+")
    seen: list[tuple[str, bool]] = []
    for minute in range(0, 90, 15):
        t = T0 + timedelta(minutes=minute)
        plant.step(t, 900.0, 5.0)
        await bems.poll()
        seen += [(m.code, m.active) for _, m in drain(sub) if isinstance(m, AlarmMessage)]
    # raised at the poll of 09:30, cleared at 10:00 (the event ends then)
    assert seen == [("fire_alarm", True), ("fire_alarm", False)]
    assert bems.alarms.active == set()


async def test_a_silent_bas_raises_an_alarm_after_three_polls_and_clears_when_it_answers(
    bems: Bems, bus: InProcessBus, server: BacnetServer
) -> None:
    sub = await bus.subscribe("meg/rome/operation/alarms/+")
    assert await bems.poll() is not None
    await server.stop()
    for _ in range(3):
        assert await bems.poll() is None
    await server.start()
    assert await bems.poll() is not None
    alarms = [m for _, m in drain(sub) if isinstance(m, AlarmMessage)]
    assert [(a.source, a.code, a.active) for a in alarms] == [
        ("bas-office", "bas_silent", True),
        ("bas-office", "bas_silent", False),
    ]
    assert alarms[0].severity == "critical" and "does not answer" in alarms[0].text
    assert bems.failures == 3 and bems.polls == 5


async def test_as_a_service_it_polls_on_the_cycles_beats_once_per_interval(
    bems: Bems, bus: InProcessBus
) -> None:
    import asyncio

    from openmeg.core.messages import cycle_topic

    stop = asyncio.Event()
    task = asyncio.create_task(bems.run(stop))
    await asyncio.sleep(0.05)  # subscribed
    for s in (0, 30, 59, 60, 61, 125):
        beat = PointUpdate(
            site="rome",
            device="cycle",
            name="duration_ms",
            value=1.0,
            unit="ms",
            ts=T0 + timedelta(seconds=s),
        )
        await bus.publish(cycle_topic("rome"), beat)
    stop.set()
    await asyncio.wait_for(task, 10)
    # polls at 0, 60 and 125 s: one a minute at most
    assert bems.polls == 3 and len(bems.series) == 3
    frame = bems.series.frame(60.0)
    assert list(frame.index) == [T0 + timedelta(seconds=s) for s in (0, 60, 120)]
