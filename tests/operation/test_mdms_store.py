"""MDMS raw readings on SQLite and PostgreSQL: idempotent, conflicts kept aside, bad batches
refused whole."""

import threading
from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa

from openmeg.core.store import Store, as_utc
from openmeg.operation.mdms import bulk
from openmeg.operation.mdms.bulk import Columns, problems
from openmeg.operation.mdms.day_rows import day_rows
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


def _frame(rows: list[tuple[str, str, datetime, float]]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=["meter", "channel", "interval_start", "value_kwh"])


Q = timedelta(minutes=15)
DAY2 = T0 + timedelta(days=1)
LATER = NOW + timedelta(days=2)


def test_arrays_give_meters_by_intervals_and_a_revision_per_day(store: Store) -> None:
    mdms = MeterReadings(store)
    mdms.ingest(
        _frame(
            [
                ("m-h01", "import", DAY2 - Q, 0.5),  # the last interval of 1 October
                ("m-h01", "import", DAY2, 0.75),  # the first of 2 October
                ("m-h02", "import", DAY2 + Q, 1.25),
                ("m-h02", "export", DAY2, 3.0),  # another channel: not in the import arrays
            ]
        ),
        meters=METERS,
        source="a.csv",
        received_at=LATER,
    )
    values, revision = mdms.arrays(["m-h02", "m-h01"], "import", DAY2 - 2 * Q, DAY2 + 2 * Q)
    nan = np.nan
    np.testing.assert_array_equal(values, [[nan, nan, nan, 1.25], [nan, 0.5, 0.75, nan]])
    np.testing.assert_array_equal(revision, [[0, 1], [1, 1]])  # 1 and 2 October
    # a late reading changes its day's row (revision 2); a duplicate or a conflict does not
    late = mdms.ingest(
        _frame(
            [
                ("m-h01", "import", DAY2 + 3 * Q, 0.125),
                ("m-h01", "import", DAY2 - Q, 0.5),
                ("m-h02", "import", DAY2 + Q, 9.0),
            ]
        ),
        meters=METERS,
        source="late.csv",
        received_at=LATER,
    )
    assert (late.new, late.duplicates, len(late.conflicts)) == (1, 1, 1)
    values, revision = mdms.arrays(["m-h01", "m-h02"], "import", T0, DAY2 + timedelta(days=1))
    assert values.shape == (2, 192)
    assert values[0, 95] == 0.5 and values[0, 96] == 0.75 and values[0, 99] == 0.125
    assert values[1, 97] == 1.25  # the stored value stays
    assert np.isnan(values).sum() == 2 * 192 - 4
    np.testing.assert_array_equal(revision, [[1, 2], [0, 1]])
    revisions = mdms.revisions(["m-h02", "m-h01"], "import", T0 + Q, DAY2 + timedelta(days=3))
    np.testing.assert_array_equal(revisions, [[0, 1, 0, 0], [1, 2, 0, 0]])
    assert mdms.count() == 5
    with pytest.raises(ValueError, match="must be interval starts"):
        mdms.arrays(["m-h01"], "import", T0 + timedelta(minutes=5), DAY2)
    with pytest.raises(ValueError, match="is before start"):
        mdms.arrays(["m-h01"], "import", DAY2, T0)
    with pytest.raises(ValueError, match="asked for once: m-h01 repeat"):
        mdms.arrays(["m-h01", "m-h02", "m-h01"], "import", T0, DAY2)


def test_a_day_row_holds_its_96_intervals_a_mask_and_a_revision(store: Store) -> None:
    mdms = MeterReadings(store)
    mdms.ingest(batch(3), meters=METERS, source="a.csv", received_at=NOW)
    mdms.ingest(batch(5), meters=METERS, source="b.csv", received_at=NOW + Q)
    with store.engine.connect() as conn:
        [row] = conn.execute(sa.select(day_rows)).all()
    assert (row.meter, row.channel, row.day) == (
        "m-h01",
        "import",
        20727,
    )  # 2026-10-01, days after 1970-01-01
    assert (row.n, row.revision, row.source) == (5, 2, "b.csv")
    assert as_utc(row.received_at) == NOW + Q
    values = np.frombuffer(row.value_kwh, dtype="<f8")
    present = np.unpackbits(np.frombuffer(row.present, dtype=np.uint8)).astype(bool)
    assert values.shape == (96,) and present.tolist() == [True] * 5 + [False] * 91
    assert values[:5].tolist() == [0.25, 0.26, 0.27, 0.28, 0.29]


def test_matrix_and_long_frame_from_the_day_rows(store: Store) -> None:
    mdms = MeterReadings(store)
    mdms.ingest(
        _frame(
            [
                ("m-h02", "export", T0 + Q, 2.0),
                ("m-h01", "import", T0, 1.0),
                ("m-h02", "import", T0 + Q, 3.0),
                ("m-h01", "export", T0, 4.0),
            ]
        ),
        meters=METERS,
        source="a.csv",
        received_at=NOW,
    )
    grid = mdms.matrix(["m-h01", "m-h02"], "import", T0, T0 + 3 * Q)
    assert grid.index.tolist() == [pd.Timestamp(T0 + k * Q) for k in range(3)]
    assert grid.columns.tolist() == ["m-h01", "m-h02"]
    np.testing.assert_array_equal(grid.to_numpy(), [[1.0, np.nan], [np.nan, 3.0], [np.nan] * 2])
    long = mdms.long_frame(["m-h02", "m-h01"], T0 - timedelta(minutes=5), T0 + Q)
    assert long.to_dict("list") == {
        "meter": ["m-h01", "m-h01"],
        "channel": ["import", "export"],
        "interval_start": [pd.Timestamp(T0)] * 2,
        "value_kwh": [1.0, 4.0],
    }
    assert mdms.series("m-h02", "export", T0 + timedelta(minutes=1), NOW).to_dict() == {
        pd.Timestamp(T0 + Q): 2.0
    }


def test_a_big_batch_over_many_meters_and_days_then_again(store: Store) -> None:
    """6,000 meters (more than one query of SQLite names) over two UTC days: stored, then
    offered again with one value changed and one reading more."""
    meters = [f"m-{i:04d}" for i in range(6000)]
    starts = [T0 + timedelta(hours=23, minutes=45), DAY2]
    frame = _frame([(m, "import", t, i / 1000) for i, m in enumerate(meters) for t in starts])
    mdms = MeterReadings(store)
    first = mdms.ingest(frame, meters=set(meters), source="big.csv", received_at=NOW)
    assert (first.new, first.duplicates, first.conflicts) == (12_000, 0, [])
    again = pd.concat([frame, _frame([("m-5999", "import", DAY2 + Q, 7.0)])], ignore_index=True)
    again.loc[11_999, "value_kwh"] = 8.0  # m-5999 on 2 October, first interval
    report = mdms.ingest(again, meters=set(meters), source="big2.csv", received_at=NOW)
    assert (report.new, report.duplicates) == (1, 11_999)  # and 1 conflict: 12,001
    assert report.conflicts == [("m-5999", "import", DAY2, 5.999, 8.0)]
    values, revision = mdms.arrays(["m-0000", "m-5999"], "import", DAY2 - Q, DAY2 + 2 * Q)
    np.testing.assert_array_equal(values, [[0.0, 0.0, np.nan], [5.999, 5.999, 7.0]])
    np.testing.assert_array_equal(revision, [[1, 1], [1, 2]])
    assert mdms.count() == 12_001


def test_a_file_may_hold_a_negative_value_the_bus_may_not(store: Store) -> None:
    """One check for both paths: a file's negative reading is stored for VEE to flag; the
    AMI's is refused (a meter's channel never counts backwards)."""
    cols = Columns(
        meter=np.array(["m-h01", "m-h01"], dtype=object),
        channel=np.array(["import", "import"], dtype=object),
        start_s=np.array([int(T0.timestamp()), int((T0 + Q).timestamp())]),
        value=np.array([0.5, -0.25]),
        source=np.array(["t", "t"], dtype=object),
    )
    assert problems(cols, meters=METERS, now=NOW) == ["reading 2: value -0.25 kWh is negative"]
    mdms = MeterReadings(store)
    frame = _frame([("m-h01", "import", T0, 0.5), ("m-h01", "import", T0 + Q, -0.25)])
    assert mdms.ingest(frame, meters=METERS, source="f.csv", received_at=NOW).new == 2
    assert mdms.series("m-h01", "import", T0, NOW).tolist() == [0.5, -0.25]


def test_writers_of_one_day_row_at_once_lose_nothing(store: Store) -> None:
    """Each writer reads the row, merges and writes it whole: the table's write lock, taken
    first, keeps one writer from writing over what another just added."""
    mdms = MeterReadings(store)
    errors: list[BaseException] = []

    def write(k: int) -> None:
        try:
            for j in range(4):
                at = T0 + (4 * k + j) * Q
                mdms.ingest(
                    _frame([("m-h01", "import", at, k + j / 10)]),
                    meters=METERS,
                    source=f"writer {k}",
                    received_at=NOW,
                )
        except BaseException as err:
            errors.append(err)

    threads = [threading.Thread(target=write, args=(k,)) for k in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    values, revision = mdms.arrays(["m-h01"], "import", T0, T0 + 24 * Q)
    assert values[0].tolist() == [k + j / 10 for k in range(6) for j in range(4)]
    assert revision.tolist() == [[24]]


def test_readings_of_a_store_made_before_the_day_rows_are_moved_into_them(store: Store) -> None:
    legacy = sa.Table(
        "meter_readings",
        sa.MetaData(),
        sa.Column("meter", sa.String(64), nullable=False),
        sa.Column("channel", sa.String(16), nullable=False),
        sa.Column("interval_start", sa.DateTime(timezone=True), nullable=False),
        sa.Column("value_kwh", sa.Float, nullable=False),
        sa.Column("source", sa.String(128), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("meter", "channel", "interval_start"),
    )
    rows = [
        ("m-h01", "import", T0, 0.5, "old.csv", NOW),
        ("m-h01", "import", T0 + Q, 0.75, "old.csv", NOW + Q),
        ("m-h02", "export", DAY2, 1.5, "head-end", NOW),
    ]
    keys = ["meter", "channel", "interval_start", "value_kwh", "source", "received_at"]
    with store.engine.begin() as conn:
        legacy.create(conn)
        conn.execute(legacy.insert(), [dict(zip(keys, r, strict=True)) for r in rows])
    mdms = MeterReadings(store)
    assert not sa.inspect(store.engine).has_table("meter_readings")
    assert mdms.count() == 3
    assert mdms.series("m-h01", "import", T0, NOW).tolist() == [0.5, 0.75]
    values, revision = mdms.arrays(["m-h02"], "export", DAY2, DAY2 + Q)
    assert values.tolist() == [[1.5]] and revision.tolist() == [[1]]
    with store.engine.connect() as conn:
        row = conn.execute(sa.select(day_rows).where(day_rows.c.meter == "m-h01")).one()
    assert (row.n, row.source, as_utc(row.received_at)) == (2, "old.csv", NOW + Q)
    assert MeterReadings(store).count() == 3  # once only


def test_a_batch_bigger_than_what_is_merged_at_once_does_the_same(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Merged 2 day rows at a time (meters in parts, one transaction): the same report, in the
    same order, and the same rows as a batch merged at once."""
    monkeypatch.setattr(bulk, "ROWS_AT_ONCE", 2)
    meters = {"m-a", "m-b", "m-c"}
    first = _frame(
        [(m, c, DAY2 - Q, 1.0) for m in sorted(meters) for c in ("import", "export")]
        + [("m-b", "import", DAY2, 2.0)]
    )
    mdms = MeterReadings(store)
    assert mdms.ingest(first, meters=meters, source="a", received_at=LATER).new == 7
    again = _frame(
        [
            ("m-c", "export", DAY2 - Q, 5.0),  # a conflict
            ("m-a", "import", DAY2, 3.0),  # new
            ("m-b", "import", DAY2, 4.0),  # a conflict
            ("m-a", "import", DAY2 - Q, 1.0),  # a duplicate
            ("m-c", "import", DAY2 + Q, 6.0),  # new
        ]
    )
    report = mdms.ingest(again, meters=meters, source="b", received_at=LATER)
    assert (report.new, report.duplicates) == (2, 1)
    assert report.conflicts == [
        ("m-c", "export", DAY2 - Q, 1.0, 5.0),
        ("m-b", "import", DAY2, 2.0, 4.0),
    ]
    values, revision = mdms.arrays(["m-a", "m-b", "m-c"], "import", DAY2 - Q, DAY2 + 2 * Q)
    np.testing.assert_array_equal(
        values, [[1.0, 3.0, np.nan], [1.0, 2.0, np.nan], [1.0, np.nan, 6.0]]
    )
    np.testing.assert_array_equal(revision, [[1, 1], [1, 1], [1, 1]])
    assert mdms.count() == 9
