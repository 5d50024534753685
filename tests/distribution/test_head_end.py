"""The head-end's 15-minute intervals on a clock that a time synchronous unit steps: no
interval counted twice, none lost, no kWh lost."""

from datetime import UTC, datetime, timedelta

import pytest

from openmeg.core.clock import WallClock
from openmeg.core.edge import Refused
from openmeg.core.messages import PointUpdate
from openmeg.distribution.head_end import HeadEnd

T0 = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)


def _register(kwh: float, ts: datetime) -> PointUpdate:
    return PointUpdate(
        site="s", device="m1", name="import_kwh", value=kwh, unit="kWh", ts=ts, quality="good"
    )


def test_steps_back_and_forward_count_every_interval_once() -> None:
    machine = [T0.timestamp()]  # the machine's own clock, seconds since the epoch
    clock = WallClock(source=lambda: machine[0])
    head = HeadEnd("s", {"m1"})
    kwh = 0.0
    readings = []
    for minute in range(181):  # three hours of true time, a poll a minute
        if minute == 50:
            clock.set_offset(-20 * 60.0)  # the server says: 20 minutes ahead; step back
        if minute == 100:
            clock.set_offset(clock.offset_s + 35 * 60.0)  # then 35 minutes behind; forward
        head.observe(_register(kwh, clock.now()))
        for batch in head.tick(clock.now()):
            readings += [(r.interval_start, r.value_kwh) for r in batch.readings]
        kwh += 0.1  # 0.1 kWh in each true minute
        machine[0] += 60.0

    starts = [s for s, _ in readings]
    assert len(starts) == len(set(starts)), "an interval was counted twice"
    assert starts == [T0 + timedelta(minutes=15 * i) for i in range(len(starts))], "one lost"
    # clock time: 10:00 .. 10:49 (true minutes 0-49), back to 10:30 .. 11:19 (50-99), then
    # forward to 11:55 .. 13:15 (100-180). Boundaries count the first time the clock passes
    # them: 10:45 at minute 45 (4.5 kWh), 11:00 only at minute 80 (8.0), 11:15 at 95 (9.5),
    # the step lands past 11:45 at minute 100 (10.0): 11:15 and 11:30 share those 0.5 kWh.
    energy = dict(readings)

    def at(hh: int, mm: int) -> float:
        return energy[datetime(2026, 3, 2, hh, mm, tzinfo=UTC)]

    assert starts[-1] == datetime(2026, 3, 2, 13, 0, tzinfo=UTC)
    assert [at(10, 0), at(10, 15), at(10, 30)] == pytest.approx([1.5, 1.5, 1.5])
    assert at(10, 45) == pytest.approx(3.5)  # 35 true minutes: the clock went back over it
    assert at(11, 0) == pytest.approx(1.5)
    assert [at(11, 15), at(11, 30)] == pytest.approx([0.25, 0.25])  # stepped over
    assert at(11, 45) == pytest.approx(0.5)
    assert [at(h, m) for h, m in ((12, 0), (12, 15), (12, 30), (12, 45), (13, 0))] == (
        pytest.approx([1.5] * 5)
    )
    # nothing lost: the intervals add up to the register's rise between their boundaries
    last_read = head.register_reads[-1]
    assert last_read[2] == datetime(2026, 3, 2, 13, 15, tzinfo=UTC)
    assert sum(energy.values()) == pytest.approx(last_read[3]) == pytest.approx(18.0)


def test_a_start_inside_an_interval_reports_from_the_first_whole_one() -> None:
    head = HeadEnd("s", {"m1"})
    t = T0 + timedelta(minutes=7)
    out = []
    for minute in range(40):
        head.observe(_register(minute * 0.2, t))
        out += head.tick(t)
        t += timedelta(minutes=1)
    assert [(b.readings[0].interval_start, b.readings[0].value_kwh) for b in out] == [
        (T0 + timedelta(minutes=15), pytest.approx(3.0)),
        (T0 + timedelta(minutes=30), pytest.approx(3.0)),
    ]  # 10:07 .. 10:46: the partial 10:00 interval is not reported


def _refusal(head: HeadEnd, msg: PointUpdate, now: datetime) -> str:
    with pytest.raises(Refused) as err:
        head.observe(msg, now)
    return err.value.kind


def test_a_register_cannot_jump_go_back_or_be_negative_and_its_interval_is_not_reported() -> None:
    head = HeadEnd("s", {"m1"}, max_kw=60.0, slack_s=0.0)  # 60 kW: 1 kWh a minute at most
    out = []
    t = T0
    kinds = []
    for minute in range(46):
        kwh = 100.0 + 0.5 * minute
        head.observe(_register(kwh, t), t)
        exported = PointUpdate(
            site="s", device="m1", name="export_kwh", value=0.1 * minute, unit="kWh", ts=t
        )
        head.observe(exported, t)
        if minute == 20:  # 10:20, in the second interval: an injected jump, then others
            for bad in (49_589.67, 99.0, -1.0):
                kinds.append(_refusal(head, _register(bad, t), t))
        out += head.tick(t)
        t += timedelta(minutes=1)
    assert kinds == ["register_jump", "register_backwards", "register_invalid"]
    got = [(b.channel, b.readings[0].interval_start, b.readings[0].value_kwh) for b in out]
    assert got == [
        ("import", T0, pytest.approx(7.5)),
        ("export", T0, pytest.approx(1.5)),
        # 10:15 is left out on both channels: a value was refused in it
        ("import", T0 + timedelta(minutes=30), pytest.approx(7.5)),
        ("export", T0 + timedelta(minutes=30), pytest.approx(1.5)),
    ]
    # the register reads at the boundaries are what the meter measured, never the injection
    imports = [r[3] for r in head.register_reads if r[1] == "import"]
    assert imports == [100.0, 107.5, 115.0, 122.5]


def test_a_rise_the_meter_can_measure_is_taken_over_the_time_elapsed() -> None:
    head = HeadEnd("s", {"m1"}, max_kw=60.0, slack_s=60.0)
    head.observe(_register(10.0, T0), T0)
    later = T0 + timedelta(minutes=10)
    head.observe(_register(10.0 + 11.0, later), later)  # 11 kWh in 10 (+1) minutes: the most
    with pytest.raises(Refused, match=r"1.01 kWh more than 21 in 0 s, beyond the 1 kWh that 60"):
        head.observe(_register(21.0 + 1.01, later), later)


def test_registers_of_unknown_meters_are_refused_those_of_other_devices_passed_over() -> None:
    head = HeadEnd("s", {"m1"}, known={"m1", "ev1"})
    with pytest.raises(Refused, match="'m9' is no meter of this site"):
        head.observe(
            PointUpdate(site="s", device="m9", name="import_kwh", value=1.0, unit="kWh", ts=T0)
        )
    head.observe(
        PointUpdate(site="s", device="ev1", name="import_kwh", value=1.0, unit="kWh", ts=T0)
    )
    head.observe(  # an invalid register carries no value: nothing to take
        PointUpdate(
            site="s",
            device="m1",
            name="import_kwh",
            value=None,
            unit="kWh",
            ts=T0,
            quality="invalid",
        )
    )
    assert head.tick(T0) == [] and head.register_reads == []
