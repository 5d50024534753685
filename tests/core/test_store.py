"""The same store tests run on SQLite and on PostgreSQL."""

from datetime import UTC, datetime, timedelta
from pathlib import Path

from openmeg.core.points import Point, PointId, Quality
from openmeg.core.store import Store, sqlite_url

T0 = datetime(2026, 3, 1, tzinfo=UTC)
SOC = PointId(site="demo", device="bess1", name="soc")


def _points(n: int, offset: float = 0.0) -> list[Point]:
    return [
        Point(id=SOC, value=i / 10 + offset, unit="1", ts=T0 + timedelta(minutes=i))
        for i in range(n)
    ]


def test_batch_write_and_history_window(store: Store) -> None:
    assert store.write_points(_points(100)) == 100
    got = store.history(SOC, T0 + timedelta(minutes=10), T0 + timedelta(minutes=13))
    assert [p.value for p in got] == [1.0, 1.1, 1.2]
    assert got[0].ts == T0 + timedelta(minutes=10)
    assert got[0].quality is Quality.GOOD
    assert store.count_points("demo") == 100


def test_duplicate_keys_keep_the_first_value(store: Store) -> None:
    store.write_points(_points(3))
    store.write_points(_points(5, offset=100.0))
    values = [p.value for p in store.history(SOC)]
    assert values == [0.0, 0.1, 0.2, 100.3, 100.4]


def test_events_and_state_round_trip(store: Store) -> None:
    store.add_event(
        ts=T0,
        site="demo",
        kind="alarm",
        source="bess1",
        code="soc_low",
        text="SoC below 10 %",
        severity="warning",
    )
    [ev] = store.events("demo", kind="alarm")
    assert ev["code"] == "soc_low" and ev["severity"] == "warning"
    store.save_states("demo", T0, [("bess1", {"soc": 0.42}), ("chp1", {"on": True})])
    store.save_states("demo", T0, [("bess1", {"soc": 0.40})])
    assert store.load_states("demo") == {"bess1": {"soc": 0.40}, "chp1": {"on": True}}


def test_sqlite_is_wal_and_full_sync(tmp_path: object) -> None:
    from pathlib import Path

    s = Store(f"sqlite+pysqlite:///{Path(str(tmp_path)) / 'x.db'}")
    s.create_schema()
    with s.engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA synchronous").scalar() == 2
    s.close()


def test_a_value_that_is_not_a_number_is_kept_as_such(store: Store) -> None:
    nan = Point(id=SOC, value=float("nan"), unit="1", ts=T0, quality=Quality.INVALID)
    assert store.write_points([nan]) == 1
    [got] = store.history(SOC)
    assert got.value != got.value and got.quality is Quality.INVALID


def test_the_sqlite_files_are_readable_by_their_owner_only(tmp_path: Path) -> None:
    import os
    import stat

    old = os.umask(0)  # even with a permissive umask
    try:
        db = Store(sqlite_url(tmp_path / "meg.db"))
        db.create_schema()
        db.add_event(ts=T0, site="demo", kind="config", source="t", code="c", text="x")
    finally:
        os.umask(old)
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == ["meg.db", "meg.db-shm", "meg.db-wal"]
    assert {stat.S_IMODE((tmp_path / n).stat().st_mode) for n in names} == {0o600}
    db.close()
    (tmp_path / "meg.db").chmod(0o644)
    Store(sqlite_url(tmp_path / "meg.db")).close()  # an existing file readable by others
    assert stat.S_IMODE((tmp_path / "meg.db").stat().st_mode) == 0o600
