from datetime import UTC, datetime, timedelta

import pytest

from openmeg.core.clock import SimClock, WallClock

T0 = datetime(2026, 1, 1, tzinfo=UTC)


async def test_simclock_sleep_advances_exactly_without_waiting() -> None:
    clock = SimClock(T0)
    await clock.sleep(3600)
    await clock.sleep(0.5)
    assert clock.now() == T0 + timedelta(seconds=3600.5)


def test_simclock_refuses_naive_start_and_going_backward() -> None:
    with pytest.raises(ValueError, match="aware"):
        SimClock(datetime(2026, 1, 1))
    clock = SimClock(T0)
    with pytest.raises(ValueError, match="backward"):
        clock.advance(-1)
    assert clock.now() == T0


def test_wallclock_applies_measured_offset() -> None:
    plain, corrected = WallClock(), WallClock(offset_s=120.0)
    delta = (corrected.now() - plain.now()).total_seconds()
    assert 119.9 < delta < 120.1
    corrected.set_offset(-30.0)
    delta = (corrected.now() - plain.now()).total_seconds()
    assert -30.1 < delta < -29.9
    assert corrected.now().tzinfo is UTC


async def test_a_paced_clock_does_not_lag_behind_the_work_done_between_sleeps() -> None:
    import time as _time
    from datetime import UTC, datetime

    from openmeg.core.clock import SimClock

    clock = SimClock(datetime(2026, 1, 1, tzinfo=UTC), speed=10.0)
    t0 = _time.monotonic()
    for _ in range(5):
        _time.sleep(0.05)  # 50 ms of work in each 100 ms of real time
        await clock.sleep(1.0)  # one simulated second = 100 ms at speed 10
    elapsed = _time.monotonic() - t0
    assert clock.now() == datetime(2026, 1, 1, 0, 0, 5, tzinfo=UTC)
    assert 0.49 <= elapsed < 0.58  # not 5 x (50 + 100) ms = 0.75 s
