"""Time synchronisation against chrony serving on a loopback port."""

import re
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from openmeg.core.clock import WallClock
from openmeg.core.errors import DeviceError
from openmeg.customer.time_sync import TimeSync
from openmeg.protocols.ntp import query
from tests.keys import shared_keystore
from tests.services import free_port


@pytest.fixture(scope="module")
def chrony() -> Iterator[int]:
    chronyd = shutil.which("chronyd") or "/usr/sbin/chronyd"
    if not Path(chronyd).exists():
        pytest.fail("chrony is not installed: apt-get install chrony (Debian)")
    root = Path(tempfile.mkdtemp(prefix="openmeg-chrony-"))
    port = free_port()
    (root / "chrony.conf").write_text(
        f"port {port}\nbindaddress 127.0.0.1\nallow 127.0.0.1\nlocal stratum 8\ncmdport 0\n"
        f"pidfile {root}/chronyd.pid\ndriftfile {root}/drift\nuser root\n"
    )
    proc = subprocess.Popen(
        [chronyd, "-d", "-x", "-f", str(root / "chrony.conf")],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        for _ in range(50):
            try:
                query("127.0.0.1", port, timeout_s=0.2)
                break
            except DeviceError:
                time.sleep(0.1)
        yield port
    finally:
        proc.terminate()
        proc.wait(10)
        shutil.rmtree(root, ignore_errors=True)


def test_offset_and_delay_against_chrony(chrony: int) -> None:
    sample = query("127.0.0.1", chrony)
    assert abs(sample.offset_s) < 0.01 and 0 <= sample.delay_s < 0.05
    assert sample.stratum == 8  # the local stratum chrony was given


def test_a_clock_120_s_ahead_is_measured_and_corrected(chrony: int) -> None:
    clock = WallClock(source=lambda: time.time() + 120.0)
    result = TimeSync(clock, "127.0.0.1", chrony, max_offset_s=0.5).sync()
    assert result.sample is not None
    assert result.sample.offset_s == pytest.approx(-120.0, abs=0.01)
    assert "clock was -120.0" in result.alarm and "corrected" in result.alarm
    assert abs((clock.now() - datetime.now(UTC)).total_seconds()) < 0.05


def test_a_silent_time_server_raises_an_alarm_and_leaves_the_clock() -> None:
    clock = WallClock(offset_s=0.25)
    result = TimeSync(clock, "127.0.0.1", free_port(), max_offset_s=0.5).sync()
    assert result.sample is None and result.alarm.startswith("time server unreachable")
    assert clock.offset_s == 0.25


def test_a_clock_stepped_back_by_the_time_server_counts_no_interval_twice(chrony: int) -> None:
    from openmeg.core.messages import PointUpdate
    from openmeg.distribution.head_end import HeadEnd, floor_interval

    clock = WallClock(source=lambda: time.time() + 1800.0)  # the machine runs 30 min ahead
    head = HeadEnd("s", {"m1"})

    def poll(kwh: float) -> list[object]:
        head.observe(
            PointUpdate(
                site="s",
                device="m1",
                name="import_kwh",
                value=kwh,
                unit="kWh",
                ts=clock.now(),
                quality="good",
            )
        )
        return list(head.tick(clock.now()))

    poll(1.0)
    ahead = head._boundary
    result = TimeSync(clock, "127.0.0.1", chrony, max_offset_s=0.5).sync()
    assert result.sample is not None and result.sample.offset_s == pytest.approx(-1800, abs=0.01)
    assert floor_interval(clock.now()) < ahead  # (the boundary at least 15 minutes back)
    assert poll(2.0) == [] and head._boundary == ahead  # boundaries passed are not passed again


async def test_the_live_meg_raises_and_clears_the_time_alarm(chrony: int, tmp_path: Path) -> None:
    import asyncio

    from openmeg.app import LiveMeg
    from openmeg.core.bus import InProcessBus
    from openmeg.core.clock import SimClock
    from openmeg.core.messages import AlarmMessage
    from openmeg.core.site import load_site
    from openmeg.core.store import Store, sqlite_url

    store = Store(sqlite_url(tmp_path / "meg.db"))
    store.create_schema()
    bus = InProcessBus()
    alarms = await bus.subscribe("meg/demo/operation/alarms/time")
    ahead = WallClock(source=lambda: time.time() + 120.0)
    meg = LiveMeg(
        load_site("demo"),
        clock=SimClock(datetime(2026, 6, 1, 12, tzinfo=UTC)),
        bus=bus,
        store=store,
        keystore=shared_keystore(),
        step_s=60.0,
        time_sync=TimeSync(ahead, "127.0.0.1", chrony, max_offset_s=0.5),
        time_sync_every_s=120.0,
    )
    await meg.start()
    try:
        await meg.run(asyncio.Event(), max_cycles=3)  # asks at 12:00 and at 12:02
        meg.economics.time_sync = TimeSync(WallClock(), "127.0.0.1", free_port())  # silent now
        await meg.run(asyncio.Event(), max_cycles=5)  # asks at 12:04
    finally:
        await meg.stop()
        store.close()
    got = []
    while alarms.pending():
        _, msg = await alarms.get()
        assert isinstance(msg, AlarmMessage)
        got.append((msg.active, msg.text, f"{msg.ts:%H:%M}"))
    assert [(active, text[:10], at) for active, text, at in got] == [
        (True, "clock was ", "12:00"),
        (False, "the clock ", "12:02"),
        (True, "time serve", "12:04"),
    ]
    # the offset measured against chrony: -120 s, to the exchange's few milliseconds
    offset = float(re.match(r"clock was (-?\d+\.\d+)", got[0][1]).group(1))  # type: ignore[union-attr]
    assert offset == pytest.approx(-120.0, abs=0.02)
    assert got[1][1].startswith("the clock is on t") and got[2][1].startswith("time server unrea")
    assert abs(ahead.now().timestamp() - time.time()) < 0.05  # the clock was corrected
