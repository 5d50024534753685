"""The automatic VEE: a local day validated once it closes on the MEG's clock, again when a late
reading changes it (announced on the bus, or found on start), never when nothing changed."""

from datetime import UTC, datetime, timedelta

import pandas as pd

from openmeg.core.bus import InProcessBus
from openmeg.core.clock import SimClock
from openmeg.core.messages import IntervalReading, stored_readings_topic
from openmeg.core.messages import MeterReadings as ReadingsMessage
from openmeg.core.store import Store
from openmeg.operation.mdms import raw_arrays
from openmeg.operation.mdms.store import MeterReadings
from openmeg.operation.mdms.validated import ValidatedReadings, vee_status
from openmeg.operation.mdms.vee import VeeConfig
from openmeg.operation.mdms.vee_run import day_status
from openmeg.operation.mdms.vee_service import VeeService

TZ = "Europe/Berlin"
CFG = VeeConfig(timezone=TZ)
DAY1 = pd.Timestamp("2026-06-02", tz=TZ)  # local midnight, 22:00 UTC the day before
Q = timedelta(minutes=15)
METERS = {"m1", "m2"}


def _ingest(store: Store, meter: str, starts: list[datetime], value: float) -> None:
    frame = pd.DataFrame(
        {"meter": meter, "channel": "import", "interval_start": starts, "value_kwh": value}
    )
    MeterReadings(store).ingest(
        frame, meters=METERS, source="test", received_at=datetime(2026, 6, 9, tzinfo=UTC)
    )


def _day(day: pd.Timestamp) -> list[datetime]:
    return [(day + i * Q).tz_convert("UTC").to_pydatetime() for i in range(96)]


def _current(store: Store, meter: str, day: str) -> int:
    """The raw revision of a local day now, as the store gives it."""
    start = pd.Timestamp(day, tz=TZ)
    lo = raw_arrays.utc_day_floor(start)
    hi = raw_arrays.utc_day_ceil(start + pd.Timedelta(days=1))
    _, revisions = raw_arrays.raw_days(MeterReadings(store), [meter], "import", lo, hi)
    offset = int((start - lo) / Q)
    [_], revs = day_status(start.tz_convert("UTC"), 96, offset, revisions, CFG)
    return int(revs[0, 0])


def _rows(store: Store) -> list[tuple[str, str, int]]:
    with store.engine.connect() as conn:
        got = conn.execute(
            vee_status.select().where(vee_status.c.channel == "import").order_by("meter", "day")
        )
        return [(r.meter, r.day, r.raw_revision) for r in got]


async def test_days_validated_as_they_close_and_again_after_late_readings(store: Store) -> None:
    day2 = DAY1 + pd.Timedelta(days=1)
    quiet = _day(DAY1)[50]  # m2's 12:30 on day 1: imported later, beside the bus
    _ingest(store, "m1", _day(DAY1), 0.25)
    _ingest(store, "m2", [t for t in _day(DAY1) if t != quiet], 0.25)
    late = _day(day2)[40]  # 10:00 local on day 2 missing for m1
    _ingest(store, "m1", [t for t in _day(day2) if t != late], 0.5)
    _ingest(store, "m2", _day(day2), 0.5)
    bus = InProcessBus()
    clock = SimClock((day2 + pd.Timedelta(hours=23, minutes=50)).to_pydatetime())
    vee = VeeService("demo", store, METERS, CFG, clock=clock, bus=bus)
    await vee.start()
    try:
        done = await vee.pump()  # on start: day 1 has readings and was never validated
        assert {(r.meter, r.channel, r.new_versions) for r in done if not r.empty} == {
            ("m1", "import", 0),
            ("m2", "import", 1),  # the missing 12:30 estimated
        }
        # a local day's revision: the sum of its UTC days' (1 and 2 June UTC here)
        day1 = "2026-06-02"
        assert _rows(store) == [(m, day1, _current(store, m, day1)) for m in ("m1", "m2")]
        assert await vee.pump() == []  # nothing closed, nothing changed
        clock.advance(30 * 60)  # 00:20 on day 3: day 2 closed, but within the grace
        assert await vee.pump() == []
        _ingest(store, "m2", [quiet], 0.25)  # no word on the bus: found at the day's close
        clock.advance(15 * 60)
        done = {(r.meter, r.new_versions, r.estimated) for r in await vee.pump() if not r.empty}
        # day 1 of m2 (12:30 good again: a second version), then day 2 of both
        assert done == {("m2", 1, 0), ("m1", 1, 1), ("m2", 0, 0)}
        assert (
            ValidatedReadings(store, "demo")
            .latest("m2", "import", quiet, quiet + Q)
            .iloc[0]
            .version
            == 2
        )
        v = ValidatedReadings(store, "demo")
        row = v.latest("m1", "import", late, late + Q).iloc[0]
        assert (row.version, row.value_kwh, row.quality, row.method) == (
            1,
            0.5,
            "estimated",
            "interpolation",
        )
        before = _current(store, "m1", "2026-06-03")
        assert ("m1", "2026-06-03", before) in _rows(store)
        # the late reading: stored, announced, and the day validated again
        _ingest(store, "m1", [late], 0.75)
        msg = ReadingsMessage(
            site="demo",
            meter="m1",
            channel="import",
            readings=[IntervalReading(interval_start=late, value_kwh=0.75)],
        )
        await bus.publish(stored_readings_topic("demo", "m1"), msg)
        [again] = [r for r in await vee.pump() if r.channel == "import"]
        assert (again.meter, again.new_versions, again.estimated) == ("m1", 1, 0)
        row = v.latest("m1", "import", late, late + Q).iloc[0]
        assert (row.version, row.value_kwh, row.quality, row.method) == (
            2,
            0.75,
            "good",
            "measured",
        )
        after = _current(store, "m1", "2026-06-03")
        assert after > before and ("m1", "2026-06-03", after) in _rows(store)
        assert await vee.pump() == []
    finally:
        await vee.stop()
        await bus.close()
    # a reading stored while no VEE ran (00:00 on day 3, 22:00 UTC on 3 June): day 2 of m2
    # shares that UTC day, its revision changed, and a new VEE finds it on start
    _ingest(store, "m2", [_day(day2 + pd.Timedelta(days=1))[0]], 0.5)
    fresh = VeeService("demo", store, METERS, CFG, clock=clock)
    done = await fresh.pump()
    assert sorted((r.meter, r.channel, r.new_versions) for r in done) == [("m2", "import", 0)]
    assert ("m2", "2026-06-03", _current(store, "m2", "2026-06-03")) in _rows(store)
    assert fresh.days_validated == 1


def test_the_closed_day_follows_the_local_clock() -> None:
    vee = VeeService(
        "demo",
        Store("sqlite+pysqlite:///:memory:"),
        METERS,
        CFG,
        clock=SimClock(datetime(2026, 6, 1, tzinfo=UTC)),
    )
    # 22:29 UTC is 00:29 in Berlin: within the grace, the day before yesterday is the last closed
    assert str(vee.last_closed(datetime(2026, 6, 2, 22, 29, tzinfo=UTC))) == "2026-06-01"
    assert str(vee.last_closed(datetime(2026, 6, 2, 22, 30, tzinfo=UTC))) == "2026-06-02"
    vee.store.close()


async def test_a_generator_importing_nothing_all_day_is_not_suspect(store: Store) -> None:
    _ingest(store, "m1", _day(DAY1), 0.0)  # m1: a PV inverter's own meter, zero import
    _ingest(store, "m2", _day(DAY1), 0.0)  # m2: a customer's meter, zero all day: suspect
    clock = SimClock((DAY1 + pd.Timedelta(days=1, hours=1)).to_pydatetime())
    vee = VeeService("demo", store, METERS, CFG, clock=clock, consumers={"m2"})
    done = {r.meter: r.rules for r in await vee.pump() if not r.empty}
    assert done == {"m1": (), "m2": (("zero_on_active", 96),)}
    v = ValidatedReadings(store, "demo")
    assert v.flags("m1", "import", DAY1, DAY1 + pd.Timedelta(days=1)).empty
    assert len(v.flags("m2", "import", DAY1, DAY1 + pd.Timedelta(days=1))) == 96


async def test_a_reading_of_the_next_day_in_the_same_utc_row_revalidates_the_day(
    store: Store,
) -> None:
    # Berlin's 2 June is 22:00 UTC 1 June .. 22:00 UTC 2 June; the UTC row of 2 June also holds
    # 3 June's first two hours, so a reading of 00:15 on 3 June changes the revision 2 June
    # was validated at: 2 June validated again (nothing new), at the new revision
    _ingest(store, "m1", _day(DAY1), 0.25)
    bus = InProcessBus()
    clock = SimClock((DAY1 + pd.Timedelta(days=1, minutes=40)).to_pydatetime())
    vee = VeeService("demo", store, {"m1"}, CFG, clock=clock, bus=bus)
    await vee.start()
    try:
        assert [(r.meter, r.new_versions) for r in await vee.pump() if not r.empty] == [("m1", 0)]
        day = "2026-06-02"
        before = _current(store, "m1", day)
        next_day = _day(DAY1 + pd.Timedelta(days=1))[1]  # 00:15 on 3 June, 22:15 UTC 2 June
        _ingest(store, "m1", [next_day], 0.25)
        assert _current(store, "m1", day) == before + 1
        assert _rows(store) == [("m1", day, before)]
        msg = ReadingsMessage(
            site="demo",
            meter="m1",
            channel="import",
            readings=[IntervalReading(interval_start=next_day, value_kwh=0.25)],
        )
        await bus.publish(stored_readings_topic("demo", "m1"), msg)
        again = [(r.meter, r.new_versions) for r in await vee.pump() if not r.empty]
        assert again == [("m1", 0)]
        assert _rows(store) == [("m1", day, before + 1)]
        assert vee.days_validated == 2
    finally:
        await vee.stop()
        await bus.close()
