"""The input edges of the ingest: a file's readings bounded as the live ingest bounds them,
and an empty batch stored as nothing (not a crash)."""

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd
import pytest

from openmeg.core.messages import ReadingsBatch
from openmeg.core.store import Store
from openmeg.operation.mdms.bulk import columns_of, problems, store_columns
from openmeg.operation.mdms.store import IngestError, MeterReadings

T0 = datetime(2026, 10, 1, tzinfo=UTC)
NOW = datetime(2026, 11, 1, tzinfo=UTC)


@pytest.fixture
def readings(tmp_path: Path) -> MeterReadings:
    db = Store(f"sqlite+pysqlite:///{tmp_path / 'meg.db'}")
    db.create_schema()
    return MeterReadings(db)


def _frame(values: list[float]) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "meter": "m-1",
            "channel": "import",
            "interval_start": [T0 + timedelta(minutes=15 * i) for i in range(len(values))],
            "value_kwh": values,
        }
    )


def test_a_file_reading_above_what_a_meter_measures_is_refused_as_live(
    readings: MeterReadings,
) -> None:
    with pytest.raises(IngestError) as refused:
        readings.ingest(
            _frame([0.5, 1e300, 25.0]),
            meters={"m-1"},
            source="f.csv",
            received_at=NOW,
            max_kwh=25.0,
        )
    assert refused.value.problems == [
        "f.csv row 2: 1e+300 kWh is more than a meter of this site measures in 15 minutes (25 kWh)"
    ]
    assert readings.count() == 0
    # the live ingest says the same (its messages carry at most 1e12 kWh)
    live = columns_of(
        ReadingsBatch(
            site="s",
            meter=["m-1"],
            channel=["import"],
            interval_start=[T0],
            value_kwh=[1000.0],
        ),
        "mqtt",
    )
    assert problems(live, meters={"m-1"}, now=NOW, max_kwh=25.0) == [
        "reading 1: 1000 kWh is more than a meter of this site measures in 15 minutes (25 kWh)"
    ]
    report = readings.ingest(
        _frame([0.5, 25.0]), meters={"m-1"}, source="f.csv", received_at=NOW, max_kwh=25.0
    )
    assert report.new == 2


def test_an_empty_file_is_zero_new(readings: MeterReadings) -> None:
    empty = _frame([]).astype({"interval_start": object, "value_kwh": object})
    report = readings.ingest(empty, meters={"m-1"}, source="f.csv", received_at=NOW)
    assert (report.new, report.duplicates, report.conflicts) == (0, 0, [])
    assert readings.count() == 0


def test_an_empty_batch_on_the_bus_is_zero_new(readings: MeterReadings) -> None:
    cols = columns_of(
        ReadingsBatch(site="s", meter=[], channel=[], interval_start=[], value_kwh=[]), "mqtt"
    )
    assert problems(cols, meters={"m-1"}, now=NOW, max_kwh=25.0) == []
    report = store_columns(readings.store, cols, NOW)
    assert (report.new, report.duplicates, report.conflicts) == (0, 0, [])
