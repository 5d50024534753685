"""The live status view of ``openmeg run``, rendered by rich to text: the alarms active in the
SCADA (raised through the alarm path: the bus and the event log), the speed asked for and the
speed achieved over a sliding window, and the MEG's time in the site's zone with the date."""

from __future__ import annotations

import io
import re
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from rich.console import Console

from openmeg.cli.status_view import SpeedMeter, status_view
from openmeg.operation.alarms import Severity, announce_alarm
from tests.api.harness import Harness


@pytest.fixture(scope="module")
def h(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Harness]:
    with Harness(tmp_path_factory.mktemp("status")) as harness:
        yield harness


def rendered(h: Harness, *, speed: float = 60.0, meter: SpeedMeter | None = None) -> str:
    console = Console(width=140, file=io.StringIO(), record=True, color_system=None)
    console.print(status_view(h.meg.site, h.meg, speed=speed, meter=meter or SpeedMeter()))
    return console.export_text()


def row(text: str, label: str) -> str:
    """The value in the row of ``label``."""
    for line in text.splitlines():
        cells = [c.strip() for c in line.strip("│| ").split("│")]
        if len(cells) == 2 and cells[0] == label:
            return cells[1]
    raise AssertionError(f"no row {label!r} in\n{text}")


def alarm_lines(text: str) -> list[str]:
    lines = text.splitlines()
    at = next(i for i, line in enumerate(lines) if line.strip("│ ").startswith("alarms"))
    return [line.strip("│ ").strip() for line in lines[at:] if "│" in line]


def raise_alarm(
    h: Harness, source: str, code: str, text: str, severity: Severity, active: bool = True
) -> None:
    h.call(
        announce_alarm(
            h.bus,
            h.store,
            site="demo",
            source=source,
            code=code,
            text=text,
            active=active,
            ts=h.clock.now(),
            severity=severity,
        )
    )


def wait_for(h: Harness, active: int) -> None:
    deadline = time.monotonic() + 10
    while len(h.meg.scada.alarms(active_only=True)) != active:
        assert time.monotonic() < deadline, h.meg.scada.alarms(active_only=True)
        time.sleep(0.05)


def test_an_active_critical_alarm_shows_with_its_severity_source_and_text(h: Harness) -> None:
    wait_for(h, 0)
    assert row(rendered(h), "alarms") == "none active"
    raise_alarm(h, "sensor-chp1", "vibration", "vibration 7.1 mm/s", "critical")
    wait_for(h, 1)
    # the old view read the runtime's controller failures only: empty with this alarm active
    assert h.meg.status.alarms == {}
    text = rendered(h)
    assert row(text, "alarms") == "1 active (1 critical)"
    raised = h.meg.scada.alarms(active_only=True)[0].raised_at
    since = raised.astimezone(ZoneInfo("Europe/Rome")).strftime("%m-%d %H:%M:%S")
    assert alarm_lines(text)[1] == (
        f"critical sensor-chp1/vibration: vibration 7.1 mm/s (since {since})"
    )
    h.meg.scada.acknowledge("sensor-chp1/vibration", user="op", ts=h.clock.now())
    assert "acknowledged by op" in alarm_lines(rendered(h))[1]
    raise_alarm(h, "sensor-chp1", "vibration", "cleared", "info", active=False)
    wait_for(h, 0)
    assert row(rendered(h), "alarms") == "none active"


def test_many_alarms_are_counted_most_severe_first(h: Harness) -> None:
    wait_for(h, 0)
    for i in range(6):
        raise_alarm(h, f"load-h0{i + 1}", "meter_stale", f"no reading for {i + 2} min", "warning")
    raise_alarm(h, "bess-community", "overtemperature", "cell 58 C", "critical")
    wait_for(h, 7)
    text = rendered(h)
    assert row(text, "alarms") == "7 active (1 critical, 6 warning)"
    lines = alarm_lines(text)
    assert lines[1].startswith("critical bess-community/overtemperature: cell 58 C")
    assert [line.split(":")[0] for line in lines[2:6]] == [
        f"warning  load-h0{i}/meter_stale" for i in range(1, 5)
    ]
    assert lines[6] == "... and 2 more (openmeg alarms, or /api)"
    for i in range(6):
        raise_alarm(h, f"load-h0{i + 1}", "meter_stale", "cleared", "info", active=False)
    raise_alarm(h, "bess-community", "overtemperature", "cleared", "info", active=False)
    wait_for(h, 0)


def test_the_time_is_the_sites_local_time_with_the_date(h: Harness) -> None:
    ts = h.meg.status.ts
    assert ts is not None
    text = rendered(h)
    assert h.meg.site.site.timezone == "Europe/Rome"
    shown = row(text, "time (Europe/Rome)")
    # the harness starts at 2026-06-01 16:00 UTC: 18:00 in Rome (CEST, UTC+2)
    assert re.fullmatch(r"2026-06-01 18:\d\d:\d\d CEST", shown), shown
    at = datetime.strptime(shown[:19], "%Y-%m-%d %H:%M:%S") - timedelta(hours=2)
    assert abs((at.replace(tzinfo=UTC) - ts).total_seconds()) < 60


def test_the_speed_asked_and_achieved_over_a_sliding_window() -> None:
    wall = [0.0]
    meter = SpeedMeter(window_s=10.0, wall=lambda: wall[0])
    start = datetime(2026, 6, 1, tzinfo=UTC)
    meg = start
    meter.sample(None)  # no cycle yet
    assert meter.speed() is None
    for _ in range(80):  # 20 s of wall time at 60x, sampled every 0.25 s
        meter.sample(meg)
        wall[0] += 0.25
        meg += timedelta(seconds=15)
    assert meter.speed() == pytest.approx(60.0)
    for _ in range(40):  # then 10 s at 18x: the window holds only these
        meter.sample(meg)
        wall[0] += 0.25
        meg += timedelta(seconds=4.5)
    meter.sample(meg)
    assert meter.speed() == pytest.approx(18.0, rel=0.03)
    assert 10.0 <= meter.span_s() <= 10.25


def test_the_view_shows_the_speed_the_live_meg_achieves(h: Harness) -> None:
    meter = SpeedMeter(window_s=10.0)
    assert row(rendered(h, meter=meter), "speed (MEG s per wall s)") == (
        "asked 60x, achieved - (measuring)"
    )
    for _ in range(9):
        meter.sample(h.meg.status.ts)
        time.sleep(0.25)
    achieved = meter.speed()
    # the harness steps 1 s of MEG time, then sleeps 0.05 s: at most 20x
    assert achieved is not None and 1.0 < achieved <= 20.5
    shown = row(rendered(h, meter=meter), "speed (MEG s per wall s)")
    assert re.fullmatch(r"asked 60x, achieved \d+\.\dx \(last 2 s\)", shown), shown
