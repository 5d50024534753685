"""Owners' monthly peak demand announced on the bus when it rises."""

from datetime import UTC, datetime, timedelta

from openmeg.core.bus import Bus
from openmeg.core.messages import IntervalReading, MeterReadings, PeakDemand
from openmeg.core.site import load_site
from openmeg.provider.peak_watch import PeakWatch

T0 = datetime(2026, 9, 30, 22, tzinfo=UTC)  # midnight in Rome


def _batch(meter: str, values: list[float], first: int = 0) -> MeterReadings:
    return MeterReadings(
        site="demo",
        meter=meter,
        channel="import",
        readings=[
            IntervalReading(interval_start=T0 + timedelta(minutes=15 * (first + i)), value_kwh=v)
            for i, v in enumerate(values)
        ],
    )


async def test_the_peak_is_announced_when_it_rises(bus: Bus) -> None:
    watch = PeakWatch(load_site("demo"), bus)
    peaks = await bus.subscribe("meg/demo/customer/+/peak")
    first = await watch.observe(_batch("m-o2", [0.25] * 4 + [0.1] * 4))  # 1 kW, then 0.4 kW
    assert [(m.owner, m.peak_kw) for m in first] == [("o2", 1.0)]
    assert await watch.observe(_batch("m-o2", [1.0, 1.0], first=8)) == []  # half an hour only
    later = await watch.observe(_batch("m-o2", [0.5, 1.0], first=10))  # 3.5 kW
    assert [(m.peak_kw, m.hour_start.isoformat()) for m in later] == [
        (3.5, "2026-10-01T02:00:00+02:00")
    ]
    assert await watch.observe(_batch("m-h01", [9.0] * 4)) == []  # not an owner in a building
    got = [(await peaks.get(timeout=5))[1] for _ in range(2)]
    assert all(isinstance(m, PeakDemand) and m.building == "bldg1" for m in got)
    assert [m.peak_kw for m in got] == [1.0, 3.5]  # type: ignore[union-attr]
