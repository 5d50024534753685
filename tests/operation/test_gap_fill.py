"""Gaps found and filled by reading the meters again (two-way AMI): readings lost on the way
(the ingest stopped for two boundaries) are asked for, the head-end answers from the register
values it recorded at the boundaries, and the MDMS stores the exact interval energies their
differences give; a gap the registers cannot fill is left for VEE, and an event says so."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from openmeg.core.bus import InProcessBus
from openmeg.core.clock import SimClock
from openmeg.core.messages import IntervalReading, MeterReadings, PointUpdate
from openmeg.core.store import Store
from openmeg.distribution.metering import MeteringService, RegisterReads
from openmeg.distribution.outbox import Outbox
from openmeg.operation.mdms.gaps import GapFiller, gaps
from openmeg.operation.mdms.ingest import IngestService
from openmeg.operation.mdms.store import MeterReadings as Readings

T0 = datetime(2026, 6, 1, 6, tzinfo=UTC)
Q = timedelta(minutes=15)
METERS = ("m-h01", "m-h02")


def _import_kwh(i: int, k: int) -> float:
    """Meter ``i``'s import register at boundary ``k``: interval k is 0.25 (i + 1) (k + 1)."""
    return 40.0 + 0.125 * (i + 1) * k * (k + 1)


def test_gaps_are_the_runs_of_missing_intervals() -> None:
    stored = [T0, T0 + Q, T0 + 4 * Q, T0 + 6 * Q]
    assert gaps(stored, T0, T0 + 8 * Q) == [
        (T0 + 2 * Q, T0 + 4 * Q),
        (T0 + 5 * Q, T0 + 6 * Q),
        (T0 + 7 * Q, T0 + 8 * Q),
    ]
    assert gaps(stored[:2], T0, T0 + 2 * Q) == []


async def test_lost_readings_are_read_again_from_the_registers(store: Store) -> None:
    bus = InProcessBus()
    readings = Readings(store)

    async def record(rows: RegisterReads) -> int:
        return await store.in_thread(readings.add_registers, rows)

    async def registers(m: str, c: str, a: datetime, b: datetime):  # type: ignore[no-untyped-def]
        return await store.in_thread(readings.registers, m, c, a, b)

    metering = MeteringService(
        "demo",
        bus,
        SimClock(T0),
        meters=set(METERS),
        device_meters=set(),
        record_registers=record,
        outbox=Outbox(store),
        read_registers=registers,
    )
    ingest = IngestService(
        "demo", None, store, {*METERS, "m-h03"}, bus=bus, clock=SimClock(T0 + timedelta(days=1))
    )
    filler = GapFiller("demo", bus, store, [*METERS, "m-h03"])
    # m-h03 sent one reading long ago, and nothing since: no register of it was recorded
    old = MeterReadings(
        site="demo",
        meter="m-h03",
        channel="import",
        readings=[IntervalReading(interval_start=T0 - 3 * Q, value_kwh=0.5)],
    )
    ingest.store_messages([("old", old)], T0)
    await metering.start()
    await ingest.start()
    try:
        for k in range(7):
            if k == 3:
                await ingest.stop()  # the readings closed at boundaries 3 and 4 are lost
            if k == 5:
                await ingest.start()
            for i, meter in enumerate(METERS):
                for name, value in (("import_kwh", _import_kwh(i, k)), ("export_kwh", 7.5)):
                    metering.handle(
                        PointUpdate(
                            site="demo",
                            device=meter,
                            name=name,
                            value=value,
                            unit="kWh",
                            ts=T0 + k * Q,
                        )
                    )
            await metering.tick(T0 + k * Q)
            await ingest.pump()
        assert readings.series("m-h01", "import", T0, T0 + 6 * Q).index.tolist() == [
            T0,
            T0 + Q,
            T0 + 4 * Q,
            T0 + 5 * Q,
        ]
        requests = await filler.check(T0 + 6 * Q, until=T0 + 6 * Q)
        assert sorted((r.meter, r.channel, r.start, r.end) for r in requests) == [
            ("m-h01", "export", T0 + 2 * Q, T0 + 4 * Q),
            ("m-h01", "import", T0 + 2 * Q, T0 + 4 * Q),
            ("m-h02", "export", T0 + 2 * Q, T0 + 4 * Q),
            ("m-h02", "import", T0 + 2 * Q, T0 + 4 * Q),
            ("m-h03", "import", T0 - 2 * Q, T0 + 6 * Q),
        ]
        await metering.pump()  # the head-end answers what its registers can
        assert metering.answered == 4
        await ingest.pump()
        # interval 2: 40 + 0.125 * 12 - (40 + 0.125 * 6) = 0.75; interval 3: 1.0 (twice for m-h02)
        assert readings.series("m-h01", "import", T0, T0 + 6 * Q).tolist() == [
            0.25,
            0.5,
            0.75,
            1.0,
            1.25,
            1.5,
        ]
        assert readings.series("m-h02", "import", T0, T0 + 6 * Q).tolist() == [
            0.5,
            1.0,
            1.5,
            2.0,
            2.5,
            3.0,
        ]
        assert readings.series("m-h02", "export", T0, T0 + 6 * Q).tolist() == [0.0] * 6
        assert readings.conflicts() == []
        # checked again: nothing new to ask; m-h03's gap is left for VEE to estimate
        assert await filler.check(T0 + 7 * Q, until=T0 + 6 * Q) == []
        assert filler.requested == 5 and filler.left_for_vee == 1
        [event] = store.events("demo", kind="mdms")
        assert event["code"] == "gap-unfilled" and event["source"] == "m-h03/import"
        assert "8 interval(s)" in event["text"] and "left for VEE to estimate" in event["text"]
    finally:
        await ingest.stop()
        await metering.stop()
