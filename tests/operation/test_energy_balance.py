"""Energy from counters and from power, and the balance of a boundary: numbers checked by hand."""

from __future__ import annotations

from datetime import UTC, date, datetime

import numpy as np
import pytest

from openmeg.operation.energy_balance import (
    Balance,
    counter_kwh,
    period_bounds,
    power_kwh,
    premises_kwh,
)

NAN = float("nan")


def a(*xs: float) -> np.ndarray:
    return np.array(xs, dtype=float)


def test_a_counter_rises_linearly_between_readings() -> None:
    # 10.0 at 0 s, 10.5 at 600 s, 11.5 at 1200 s: from 300 s (10.25) to 1200 s, 1.25 kWh
    assert counter_kwh(a(0, 600, 1200), a(10.0, 10.5, 11.5), 300, 1200) == pytest.approx(1.25)
    # the whole: 1.5 kWh; a period past the last reading counts nothing more
    assert counter_kwh(a(0, 600, 1200), a(10.0, 10.5, 11.5), 0, 99_999) == pytest.approx(1.5)
    # before the first reading nothing is known: counted from it
    assert counter_kwh(a(100, 200), a(3.0, 4.0), 0, 150) == pytest.approx(0.5)
    # out of order, with a missing reading
    assert counter_kwh(a(600, 0, 300, 900), a(7.0, 4.0, NAN, 8.0), 0, 900) == pytest.approx(4.0)


def test_a_counter_that_restarts_counts_from_zero() -> None:
    # 5 -> 6 (+1), restarts and reads 0.5 (+0.5), then 1.5 (+1): 2.5 kWh
    ts, kwh = a(0, 60, 120, 180), a(5.0, 6.0, 0.5, 1.5)
    assert counter_kwh(ts, kwh, 0, 180) == pytest.approx(2.5)
    # the restart came just before the reading that shows it: until then, the 1 kWh before it
    assert counter_kwh(ts, kwh, 0, 119) == pytest.approx(1.0)
    assert counter_kwh(ts, kwh, 120, 180) == pytest.approx(1.0)
    assert counter_kwh(a(), a(), 0, 100) == 0.0
    assert counter_kwh(ts, kwh, 100, 100) == 0.0


def test_power_holds_until_the_next_sample() -> None:
    # 6 kW for 30 min, -4 kW for 15 min, 2 kW for the last 15 min of the hour
    ts, kw = a(0, 1800, 2700), a(6.0, -4.0, 2.0)
    out, into = power_kwh(ts, kw, 0, 3600)
    assert (out, into) == (pytest.approx(3.5), pytest.approx(1.0))
    # a sample before the start holds from the start: 6 kW for 15 min, then as above
    out, into = power_kwh(ts, kw, 900, 3600)
    assert (out, into) == (pytest.approx(2.0), pytest.approx(1.0))
    # nothing is known before the first sample; a missing sample holds nothing
    assert power_kwh(a(1800, 2700), a(NAN, -4.0), 0, 3600) == (0.0, pytest.approx(1.0))
    assert power_kwh(a(), a(), 0, 3600) == (0.0, 0.0)


def test_premises_use_what_came_in_and_what_was_made_behind_the_meter() -> None:
    used = premises_kwh(imported=2.0, exported=5.0, generated=10.0, discharged=1.0, charged=3.0)
    assert used == pytest.approx(5.0)


def test_the_balance_of_a_boundary() -> None:
    b = Balance(
        generation={"pv": 30.0, "wind": 10.0},
        discharged=5.0,
        charged=8.0,
        imported=20.0,
        exported=12.0,
        loads={"homes": 25.0, "industry": 15.0},
    )
    # 20 + 40 + 5 - 8 - 12 = 45 kWh used
    assert b.consumption_kwh == pytest.approx(45.0)
    assert b.generation_kwh == pytest.approx(40.0)
    assert b.self_sufficiency == pytest.approx(25 / 45)  # 1 - 20/45
    assert b.self_consumption == pytest.approx(0.7)  # 1 - 12/40
    assert b.unmetered_kwh == pytest.approx(5.0)
    assert b.sources() == {
        "pv": 30.0,
        "wind": 10.0,
        "battery_discharge": 5.0,
        "grid_import": 20.0,
    }
    assert b.sinks() == {
        "battery_charge": 8.0,
        "grid_export": 12.0,
        "homes": 25.0,
        "industry": 15.0,
        "unmetered": pytest.approx(5.0),
    }
    # sources and sinks balance
    assert sum(b.sources().values()) == pytest.approx(sum(b.sinks().values()))


def test_shares_with_nothing_to_share_are_none_and_stay_within_0_and_1() -> None:
    night = Balance(generation={}, discharged=0.0, charged=0.0, imported=4.0, exported=0.0)
    assert night.self_consumption is None
    assert night.self_sufficiency == 0.0
    assert night.sinks() == {"battery_charge": 0.0, "grid_export": 0.0, "loads": 4.0}
    idle = Balance(generation={}, discharged=0.0, charged=0.0, imported=0.0, exported=0.0)
    assert idle.self_sufficiency is None
    # a battery that exports more than was generated: nothing of the generation was used here
    sells = Balance(generation={"pv": 2.0}, discharged=6.0, charged=0.0, imported=0.0, exported=5.0)
    assert sells.self_consumption == 0.0
    assert sells.self_sufficiency == 1.0


@pytest.mark.parametrize(
    ("now", "period", "start"),
    [
        # 12:00 EDT (UTC-4) on 1 June: the day and the month began at 04:00 UTC
        ("2026-06-01T16:00Z", "today", "2026-06-01T04:00Z"),
        ("2026-06-01T16:00Z", "month", "2026-06-01T04:00Z"),
        # 23:00 EDT on 14 June is still the 14th locally (15 June in UTC)
        ("2026-06-15T03:00Z", "today", "2026-06-14T04:00Z"),
        ("2026-06-15T03:00Z", "month", "2026-06-01T04:00Z"),
        # summer time begins at 02:00 on 8 March 2026: that day's midnight was EST (UTC-5)
        ("2026-03-08T12:00Z", "today", "2026-03-08T05:00Z"),
        ("2026-03-08T12:00Z", "month", "2026-03-01T05:00Z"),
        # and ends on 1 November 2026: that day's midnight was still EDT
        ("2026-11-01T20:00Z", "today", "2026-11-01T04:00Z"),
    ],
)
def test_the_local_day_and_month(now: str, period: str, start: str) -> None:
    t = datetime.fromisoformat(now)
    t0, t1 = period_bounds(period, t, "America/New_York")  # type: ignore[arg-type]
    assert t0 == datetime.fromisoformat(start) and t1 == t
    assert t0.tzinfo is not None


def test_a_day_or_month_gone_by() -> None:
    now = datetime(2026, 6, 1, 16, 0, tzinfo=UTC)
    ny = "America/New_York"
    day = period_bounds("day", now, ny, date(2026, 5, 20))
    assert day == (datetime(2026, 5, 20, 4, tzinfo=UTC), datetime(2026, 5, 21, 4, tzinfo=UTC))
    # February 2026 in New York: 28 days of EST (UTC-5)
    feb = period_bounds("month", now, ny, date(2026, 2, 14))
    assert feb == (datetime(2026, 2, 1, 5, tzinfo=UTC), datetime(2026, 3, 1, 5, tzinfo=UTC))
    # a day without a date is today; today's month ends now
    assert period_bounds("day", now, ny) == period_bounds("today", now, ny)
    assert period_bounds("month", now, ny, date(2026, 6, 1))[1] == now
    with pytest.raises(ValueError, match="has not begun"):
        period_bounds("day", now, ny, date(2026, 6, 2))
    with pytest.raises(ValueError, match="ask for the day"):
        period_bounds("today", now, ny, date(2026, 5, 2))


def test_bad_periods() -> None:
    with pytest.raises(ValueError, match="today, day, month"):
        period_bounds("week", datetime(2026, 6, 1, tzinfo=UTC), "UTC")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="time zone"):
        period_bounds("today", datetime(2026, 6, 1), "UTC")
    with pytest.raises(ValueError, match="same length"):
        counter_kwh(a(0, 1), a(1.0), 0, 1)
