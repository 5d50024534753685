"""The head-end's messages: the readings of all meters at a boundary in columns, split into
messages of at most ``MAX_READINGS``; split back by meter channel, nothing lost or reordered."""

from datetime import UTC, datetime

from openmeg.core.messages import IntervalReading, MeterReadings, decode, encode
from openmeg.distribution.metering import MAX_READINGS, columnar

T0 = datetime(2026, 4, 1, tzinfo=UTC)


def test_a_boundary_of_many_meters_travels_in_a_few_columnar_messages() -> None:
    closed = [
        MeterReadings(
            site="demo",
            meter=f"m-{i:05d}",
            channel=channel,  # type: ignore[arg-type]
            readings=[IntervalReading(interval_start=T0, value_kwh=i / 1000)],
        )
        for i in range(3100)
        for channel in ("import", "export")
    ]
    messages = columnar("demo", closed)
    assert [len(m.meter) for m in messages] == [MAX_READINGS, 6200 - MAX_READINGS]
    back = [part for m in messages for part in decode(encode(m)).split()]  # type: ignore[union-attr]
    assert back == closed
    assert columnar("demo", []) == []
    assert all(len(encode(m)) < 1024 * 1024 for m in messages)  # under the broker's limit
