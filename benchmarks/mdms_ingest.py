"""Benchmark: interval readings into the MDMS's interval store, durably.

``--meters`` x ``--days`` x 96 intervals of the import channel (10,000 x 30 x 96 = 28.8 million
readings by default), offered a UTC day at a time (one batch of every meter's day: a file of a
day's readings) through ``MeterReadings.ingest``, the code of ``openmeg meters import``, which
checks the batch on whole arrays and stores it with ``bulk.store_columns``, the writer of the
live MDMS ingest too. Then three of those days offered again (a redelivery: every reading a
duplicate, nothing written); every reading read back as [meters x intervals] in one
``MeterReadings.arrays`` (the fast read of VEE and billing); and, for the live path, one day of
boundary batches (every meter's reading of one interval a batch, ``bulk.store_columns`` on the
day rows already there). Into SQLite (a file, WAL, ``synchronous=FULL`` as the Store sets it)
and PostgreSQL (``--pg URL`` of a server's admin database, else the test suite's server: a
database of its own, dropped afterwards). The frames are made before the clock starts.

Prints one JSON object a line: ``mdms_ingest_readings_per_s`` (SQLite; target at least
1,000,000 for ingest alone, so that ingest and VEE together reach 300,000),
``mdms_redelivery_readings_per_s``, ``mdms_arrays_readings_per_s`` and
``mdms_live_readings_per_s``, and each again with ``_pg`` for PostgreSQL (``--no-pg``: SQLite
only). Use ``--meters 1000 --days 3`` for a quick run.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import sqlalchemy as sa

from openmeg.core.store import Store, sqlite_url
from openmeg.operation.mdms.bulk import Columns, store_columns
from openmeg.operation.mdms.store import MeterReadings

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the suite's PostgreSQL launcher
from tests.services import postgres_server

T0 = datetime(2026, 1, 1, tzinfo=UTC)
TARGET = 1_000_000


def day_frame(meters: list[str], day: int) -> pd.DataFrame:
    """Every meter's 96 import readings of UTC day ``day`` after ``T0`` (kWh)."""
    n = len(meters)
    starts = pd.date_range(T0 + timedelta(days=day), periods=96, freq="15min", tz="UTC")
    rng = np.random.default_rng(day)
    return pd.DataFrame(
        {
            "meter": np.repeat(np.array(meters, dtype=object), 96),
            "channel": "import",
            "interval_start": np.tile(starts.to_numpy(), n),
            "value_kwh": np.round(rng.gamma(2.0, 0.15, n * 96), 4),
        }
    )


def boundary(meters: list[str], at: datetime, k: int) -> Columns:
    """The live ingest's batch at one boundary: every meter's reading of one interval."""
    n = len(meters)
    return Columns(
        meter=np.array(meters, dtype=object),
        channel=np.full(n, "import", dtype=object),
        start_s=np.full(n, int(at.timestamp()), dtype=np.int64),
        value=np.round(0.1 + 0.001 * ((np.arange(n) + k) % 97), 4),
        source=np.full(n, "meg/bench/ami/readings", dtype=object),
    )


def run(store: Store, meters: list[str], days: int) -> dict[str, tuple[float, int]]:
    """Readings per second: first ingest, redelivery, live boundaries (one day after ``days``)."""
    readings = MeterReadings(store)
    known = set(meters)
    now = T0 + timedelta(days=days + 2)
    frames = [day_frame(meters, d) for d in range(days)]
    total = sum(len(f) for f in frames)
    start = time.perf_counter()
    for d, frame in enumerate(frames):
        report = readings.ingest(frame, meters=known, source=f"day-{d}.parquet", received_at=now)
        assert report.new == len(frame), report
    first = time.perf_counter() - start
    assert readings.count() == total
    offered = sum(len(f) for f in frames[:3])
    start = time.perf_counter()
    for d, frame in enumerate(frames[:3]):
        report = readings.ingest(frame, meters=known, source=f"again-{d}", received_at=now)
        assert report.new == 0 and report.duplicates == len(frame)
    again = time.perf_counter() - start
    start = time.perf_counter()
    values, revision = readings.arrays(meters, "import", T0, T0 + timedelta(days=days))
    read = time.perf_counter() - start
    assert values.shape == (len(meters), days * 96) and (revision == 1).all()
    np.testing.assert_array_equal(values[:, -96:].ravel(), frames[-1]["value_kwh"].to_numpy())
    live_day = T0 + timedelta(days=days)
    batches = [boundary(meters, live_day + k * timedelta(minutes=15), k) for k in range(96)]
    start = time.perf_counter()
    for cols in batches:
        assert store_columns(store, cols, now).new == len(meters)
    live = time.perf_counter() - start
    print(
        f"# {store.dialect}: {total} readings in {first:.2f} s; a redelivery of"
        f" {offered} in {again:.2f} s; read back as arrays in {read:.2f} s;"
        f" 96 boundaries of {len(meters)} in {live:.2f} s",
        file=sys.stderr,
    )
    return {  # readings per second, and how many readings the figure is on
        "mdms_ingest_readings_per_s": (total / first, total),
        "mdms_redelivery_readings_per_s": (offered / again, offered),
        "mdms_arrays_readings_per_s": (total / read, total),
        "mdms_live_readings_per_s": (96 * len(meters) / live, 96 * len(meters)),
    }


@contextlib.contextmanager
def pg_database(admin_url: str | None) -> Iterator[str]:
    """A database of its own on the PostgreSQL server, dropped afterwards."""
    with contextlib.ExitStack() as stack:
        url = admin_url or stack.enter_context(postgres_server())
        name = f"openmeg_bench_{uuid.uuid4().hex[:8]}"
        admin = sa.create_engine(url, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
        try:
            yield url.rsplit("/", 1)[0] + f"/{name}"
        finally:
            with admin.connect() as conn:
                conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            admin.dispose()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--meters", type=int, default=10_000)
    ap.add_argument("--days", type=int, default=30)
    ap.add_argument("--pg", help="SQLAlchemy URL of a PostgreSQL admin database")
    ap.add_argument("--no-pg", action="store_true", help="SQLite only")
    args = ap.parse_args()
    meters = [f"m-{i:05d}" for i in range(args.meters)]
    results: list[tuple[str, dict[str, tuple[float, int]]]] = []
    with tempfile.TemporaryDirectory() as tmp:
        store = Store(sqlite_url(Path(tmp) / "bench.db"))
        try:
            results.append(("", run(store, meters, args.days)))
        finally:
            store.close()
    if not args.no_pg:
        with pg_database(args.pg) as url:
            store = Store(url)
            try:
                results.append(("_pg", run(store, meters, args.days)))
            finally:
                store.close()
    for suffix, figures in results:
        for metric, (value, n) in figures.items():
            line = {"metric": metric + suffix, "value": round(value), "unit": "readings/s"}
            if metric == "mdms_ingest_readings_per_s":
                line["target"] = f">={TARGET}"
            store = "postgresql" if suffix else "sqlite"
            print(json.dumps({**line, "readings": n, "store": store}))


if __name__ == "__main__":
    main()
