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
