"""The MEG's mode changes as events and alarms: islanding raises a warning while in island,
cleared on resynchronisation; a blackout raises a critical one; a MEG that starts away from the
grid alarms at once. Each change is an event with its severity and cause."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from openmeg.core.bus import InProcessBus, waiting
from openmeg.core.clock import SimClock
from openmeg.core.messages import AlarmMessage, PointUpdate, alarm_topic
from openmeg.core.store import Store, sqlite_url
from openmeg.operation.cycle import ControlCycle
from openmeg.operation.process_image import ImageKeeper
from openmeg.operation.runtime import Runtime

T0 = datetime(2026, 6, 1, 16, 0, tzinfo=UTC)


async def _write(setpoints: object, now: datetime) -> None:
    return None


class Meg:
    def __init__(self, tmp: Path) -> None:
        self.store = Store(sqlite_url(tmp / "meg.db"))
        self.store.create_schema()
        self.bus = InProcessBus()
        self.clock = SimClock(T0)
        self.images = ImageKeeper("demo", self.bus)
        self.runtime = Runtime(
            "demo",
            self.images,
            ControlCycle([]),
            _write,
            clock=self.clock,
            bus=self.bus,
            store=self.store,
        )

    async def step(self, mode: int, utility: float) -> None:
        now = self.clock.now()
        for name, value in (("mode", float(mode)), ("utility_available", utility)):
            self.images.take(
                PointUpdate(site="demo", device="pcc", name=name, value=value, unit="1", ts=now)
            )
        await self.runtime.step()
        self.clock.advance(1.0)

    def events(self, kind: str) -> list[tuple[str, str, str]]:
        return [(e["code"], e["severity"], e["text"]) for e in self.store.events("demo", kind)]


async def test_islanding_resync_and_blackout_are_events_and_alarms(tmp_path: Path) -> None:
    meg = Meg(tmp_path)
    sub = await meg.bus.subscribe(alarm_topic("demo", "pcc"))
    await meg.step(0, 1.0)
    await meg.step(0, 1.0)
    assert meg.events("mode") == [] and meg.events("alarm") == []
    await meg.step(1, 0.0)  # the utility goes: island
    await meg.step(1, 0.0)
    await meg.step(2, 0.0)  # the island collapses
    await meg.step(0, 1.0)  # back on the grid
    assert meg.events("mode") == [
        ("island", "warning", "MEG now in island mode: the utility grid is down"),
        ("blackout", "critical", "MEG now in blackout mode: the utility grid is down"),
        ("grid", "info", "MEG now in grid mode: resynchronised with the utility grid"),
    ]
    assert meg.events("alarm") == [
        ("island", "warning", "MEG islanded: the utility grid is down"),
        ("blackout", "critical", "MEG blacked out: no supply: the utility grid is down"),
    ]
    assert meg.events("alarm_clear") == [
        ("island", "info", "MEG islanded: cleared, MEG in blackout mode"),
        ("blackout", "info", "MEG blacked out: no supply: cleared, MEG in grid mode"),
    ]
    # on the bus, for the SCADA and the dashboards: raised, then cleared, in that order
    alarms = [m for _, m in waiting(sub) if isinstance(m, AlarmMessage)]
    assert [(a.source, a.code, a.active) for a in alarms] == [
        ("pcc", "island", True),
        ("pcc", "island", False),
        ("pcc", "blackout", True),
        ("pcc", "blackout", False),
    ]
    assert alarms[0].ts == T0 + timedelta(seconds=2)
    assert meg.runtime.mode_alarms == set()


async def test_an_intentional_island_says_so_and_a_start_in_island_alarms_at_once(
    tmp_path: Path,
) -> None:
    meg = Meg(tmp_path)
    await meg.step(1, 1.0)  # the first cycle already sees an island (the PCC switch open)
    assert meg.events("mode") == []  # no change seen: no mode event
    assert meg.events("alarm") == [("island", "warning", "MEG islanded: the PCC switch is open")]
    await meg.step(1, 1.0)
    assert len(meg.events("alarm")) == 1  # raised once while it lasts
    await meg.step(0, 1.0)
    assert [c for c, _, _ in meg.events("alarm_clear")] == ["island"]
