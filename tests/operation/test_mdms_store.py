"""MDMS raw readings on SQLite and PostgreSQL: idempotent, conflicts kept aside, bad batches
refused whole."""

from datetime import UTC, datetime, timedelta

import pandas as pd
import pytest

from openmeg.core.store import Store
from openmeg.operation.mdms.store import IngestError, MeterReadings

T0 = datetime(2026, 10, 1, tzinfo=UTC)
NOW = datetime(2026, 10, 2, tzinfo=UTC)
METERS = {"m-h01", "m-h02"}


def batch(n: int = 8, meter: str = "m-h01", value: float = 0.25) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "meter": [meter] * n,
            "channel": ["import"] * n,
            "interval_start": [T0 + timedelta(minutes=15 * i) for i in range(n)],
            "value_kwh": [value + i / 100 for i in range(n)],
        }
    )


def test_ingest_is_idempotent_and_never_overwrites(store: Store) -> None:
    mdms = MeterReadings(store)
    first = mdms.ingest(batch(), meters=METERS, source="head-end", received_at=NOW)
    assert (first.new, first.duplicates, first.conflicts) == (8, 0, [])
    again = mdms.ingest(batch(), meters=METERS, source="head-end", received_at=NOW)
    assert (again.new, again.duplicates) == (0, 8)
    changed = batch(10)
    changed.loc[3, "value_kwh"] = 9.99
    third = mdms.ingest(changed, meters=METERS, source="file x.csv", received_at=NOW)
    assert (third.new, third.duplicates) == (2, 7)
    assert third.conflicts == [("m-h01", "import", T0 + timedelta(minutes=45), 0.28, 9.99)]
    s = mdms.series("m-h01", "import", T0, T0 + timedelta(hours=3))
    assert s.tolist() == pytest.approx([0.25 + i / 100 for i in range(10)])
    assert s.index[3] == pd.Timestamp(T0 + timedelta(minutes=45))
    [c] = mdms.conflicts("m-h01")
    assert (c["stored_kwh"], c["offered_kwh"], c["source"]) == (0.28, 9.99, "file x.csv")
    assert mdms.count() == 10


def test_a_bad_batch_is_refused_whole(store: Store) -> None:
    mdms = MeterReadings(store)
    bad = pd.concat([batch(4), batch(1, meter="m-x99")], ignore_index=True)
    bad = bad.astype(object)  # a file may hold anything
    bad.loc[1, "interval_start"] = T0 + timedelta(minutes=7)
    bad.loc[2, "value_kwh"] = "lots"
    bad.loc[3, "interval_start"] = NOW + timedelta(days=30)
    bad.loc[5] = ["m-h01", "import", T0, 0.1]  # the same key as row 1
    bad.loc[6] = ["m-h02", "reactive", T0, 0.1]
    with pytest.raises(IngestError) as info:
        mdms.ingest(bad, meters=METERS, source="upload.csv", received_at=NOW)
    problems = info.value.problems
    assert problems == [
        "upload.csv row 2: interval start 2026-10-01T00:07:00+00:00 is not on a 15-minute boundary",
        "upload.csv row 3: value 'lots' is not a number",
        "upload.csv row 4: interval start 2026-11-01T00:00:00+00:00 is in the future",
        "upload.csv row 5: unknown meter 'm-x99'",
        "upload.csv row 7: channel 'reactive'; accepted: import, export",
        "upload.csv: rows 1, 6 repeat one (meter, channel, interval start)",
    ]
    assert mdms.count() == 0
    with pytest.raises(IngestError, match="columns missing: value_kwh"):
        mdms.ingest(batch().drop(columns="value_kwh"), meters=METERS, source="x", received_at=NOW)
