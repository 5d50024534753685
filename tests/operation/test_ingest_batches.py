"""The ingest stores a batch of messages in one transaction: a bad message is refused alone,
a redelivery changes nothing, a conflicting value is kept aside and the stored one stays."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import numpy as np

from openmeg.core.messages import (
    IntervalReading,
    MeterReadings,
    ReadingsBatch,
    encode,
    readings_topic,
)
from openmeg.core.store import Store
from openmeg.operation.mdms.ingest import IngestService
from openmeg.operation.mdms.store import MeterReadings as Readings

T0 = datetime(2026, 3, 2, tzinfo=UTC)
NOW = T0 + timedelta(days=1)
Q = timedelta(minutes=15)


def _boundary(k: int, values: tuple[float, float, float, float]) -> ReadingsBatch:
    return ReadingsBatch(
        site="demo",
        meter=["m-h01", "m-h01", "m-h02", "m-h02"],
        channel=["import", "export", "import", "export"],
        interval_start=[T0 + k * Q] * 4,
        value_kwh=list(values),
    )


def _service(store: Store) -> IngestService:
    return IngestService("demo", None, store, {"m-h01", "m-h02"})


def test_a_bad_message_is_refused_alone(store: Store) -> None:
    ingest = _service(store)
    unknown = json.dumps(
        {
            "v": 1,
            "type": "readings_batch",
            "site": "demo",
            "meter": ["m-h01", "m-x99"],
            "channel": ["import", "import"],
            "interval_start": [(T0 + 2 * Q).isoformat()] * 2,
            "value_kwh": [1.0, 2.0],
        }
    ).encode()
    off_grid = MeterReadings(
        site="demo",
        meter="m-h02",
        channel="import",
        readings=[IntervalReading(interval_start=T0 + timedelta(minutes=7), value_kwh=1.0)],
    )
    items: list[tuple[str, bytes]] = [
        ("t1", encode(_boundary(0, (0.25, 0.0, 1.5, 0.125)))),
        ("t2", unknown),
        ("t3", b"{not json"),
        ("t4", encode(off_grid)),
        ("t5", encode(_boundary(1, (0.5, 0.0, 1.75, 0.0)))),
    ]
    stored = ingest.store_batch(items, NOW)  # type: ignore[arg-type]
    assert len(stored) == 2 and ingest.stored == 8 and ingest.refused == 3
    readings = Readings(store)
    assert readings.count() == 8
    assert readings.series("m-h01", "import", T0, NOW).tolist() == [0.25, 0.5]
    assert readings.series("m-h02", "export", T0, NOW).tolist() == [0.125, 0.0]
    refused = {e["source"]: e["text"] for e in store.events("demo", kind="ingest")}
    assert set(refused) == {"t2", "t3", "t4"}
    assert "reading 2: unknown meter 'm-x99'" in refused["t2"]
    assert "not on a 15-minute boundary" in refused["t4"]


def test_a_redelivered_batch_changes_nothing_and_a_conflict_is_kept_aside(store: Store) -> None:
    ingest = _service(store)
    first = [
        (readings_topic("demo", "_all"), encode(_boundary(k, (0.1 * k, 0, 1, 2)))) for k in range(3)
    ]
    ingest.store_batch(first, NOW)  # type: ignore[arg-type]
    assert ingest.stored == 12
    # the same batch again, one of its readings twice in it, and one with another value
    again = [*first, first[0], ("later", encode(_boundary(1, (0.1, 0, 1, 9.5))))]
    ingest.store_batch(again, NOW + Q)  # type: ignore[arg-type]
    assert ingest.stored == 12  # nothing new
    assert ingest.duplicates == 12 + 4 + 3 and ingest.conflicts == 1
    readings = Readings(store)
    assert readings.count() == 12
    assert readings.series("m-h02", "export", T0, NOW).tolist() == [2.0, 2.0, 2.0]  # kept
    [clash] = readings.conflicts()
    assert (clash["meter"], clash["channel"], clash["stored_kwh"], clash["offered_kwh"]) == (
        "m-h02",
        "export",
        2.0,
        9.5,
    )
    assert clash["source"] == "later"


def test_the_same_reading_twice_in_a_new_batch_is_stored_once(store: Store) -> None:
    ingest = _service(store)
    msg = encode(_boundary(0, (0.25, 0.0, 1.5, 0.125)))
    other = encode(_boundary(0, (0.25, 0.0, 1.5, 0.5)))
    ingest.store_batch([("a", msg), ("b", msg), ("c", other)], NOW)  # type: ignore[list-item]
    assert ingest.stored == 4 and ingest.duplicates == 7 and ingest.conflicts == 1
    assert Readings(store).series("m-h02", "export", T0, NOW).tolist() == [0.125]


def test_a_reading_above_what_a_meter_measures_is_refused(store: Store) -> None:
    ingest = IngestService("demo", None, store, {"m-h01", "m-h02"}, max_interval_kwh=475.675)
    items = [
        ("t1", _boundary(0, (475.675, 0.0, 1.0, 0.0))),  # the most a meter measures: kept
        ("t2", _boundary(1, (1e9, 0.0, 1.0, 0.0))),  # an injected register jump
    ]
    stored = ingest.store_batch(items, NOW)  # type: ignore[arg-type]
    assert len(stored) == 1 and ingest.stored == 4 and ingest.refused == 1
    assert Readings(store).series("m-h01", "import", T0, NOW).tolist() == [475.675]
    [event] = store.events("demo", kind="ingest")
    assert event["source"] == "t2"
    assert event["text"] == (
        "1 problem(s), nothing stored: reading 1: 1e+09 kWh is more than a meter of this site "
        "measures in 15 minutes (475.675 kWh)"
    )


def test_boundary_after_boundary_fills_one_day_row(store: Store) -> None:
    """The live path: each boundary's batch adds an interval to the day rows already there
    (read, merged, written back whole); each change raises the row's revision."""
    ingest = _service(store)
    for k in range(3):
        ingest.store_batch([(f"t{k}", _boundary(k, (0.25 * k, 0.0, 1.0 + k, 0.5)))], NOW)
    ingest.store_batch([("again", _boundary(1, (0.25, 0.0, 2.0, 0.5)))], NOW)  # all stored
    assert (ingest.stored, ingest.duplicates, ingest.conflicts) == (12, 4, 0)
    values, revision = Readings(store).arrays(["m-h01", "m-h02"], "import", T0, T0 + 4 * Q)
    assert values[0, :3].tolist() == [0.0, 0.25, 0.5] and values[1, :3].tolist() == [1, 2, 3]
    assert np.isnan(values[:, 3]).all()
    assert revision.tolist() == [[3], [3]]
