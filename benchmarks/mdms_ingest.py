"""Benchmark: interval readings into the MDMS's interval store, then validated, durably.

``--meters`` x ``--days`` x 96 intervals of the import channel (10,000 x 30 x 96 = 28.8 million
intervals by default), offered a UTC day at a time (one batch of every meter's day: a file of a
day's readings) through ``MeterReadings.ingest``, the code of ``openmeg meters import``, which
checks the batch on whole arrays and stores it with ``bulk.store_columns``, the writer of the
live MDMS ingest too. The readings have what VEE is for: about 0.5 % of them missing (single
intervals, and runs of two and six hours after the first week), 0.1 % negative and 0.05 %
spikes, on a daily load shape. Then VEE over the whole window through ``vee_run.vee_channel``,
the code of ``openmeg vee run`` (and of the automatic VEE): the raw arrays and four weeks of
history read from the store, every rule, the estimates, the new versions, flags and each local
day's status stored in one transaction (the Europe/Berlin time zone; ``--partition N``: N
meters a call, default all of them at once, as ``vee run`` does).

Then three of those days offered again (a redelivery: every reading a duplicate, nothing
written); every reading read back as [meters x intervals] in one ``MeterReadings.arrays`` (the
fast read of VEE and billing); and, for the live path, one day of boundary batches (every
meter's reading of one interval a batch, ``bulk.store_columns`` on the day rows already there).
Into SQLite (a file, WAL, ``synchronous=FULL`` as the Store sets it) and PostgreSQL (``--pg
URL`` of a server's admin database, else the test suite's server: a database of its own,
dropped afterwards). The frames are made before the clock starts.

Prints one JSON object a line: ``mdms_ingest_readings_per_s`` END TO END (ingest and VEE, the
readings offered over the time of both; target at least 300,000 on SQLite),
``mdms_ingest_only_readings_per_s``, ``vee_readings_per_s`` (VEE alone, from the store, as
``vee run`` does it: the window's intervals over its time; target at least 300,000) with the
flags, versions and meters VEE could not do beside it, ``mdms_redelivery_readings_per_s``,
``mdms_arrays_readings_per_s`` and ``mdms_live_readings_per_s``, and each again with ``_pg``
for PostgreSQL (``--no-pg``: SQLite only). Use ``--meters 1000 --days 10`` for a quick run.
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
from openmeg.operation.mdms.validated import ValidatedReadings
from openmeg.operation.mdms.vee import VeeConfig
from openmeg.operation.mdms.vee_run import ChannelVee, vee_channel

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the suite's PostgreSQL launcher
from tests.services import postgres_server

T0 = datetime(2026, 1, 1, tzinfo=UTC)
TARGET = 300_000  # readings/s, ingest and VEE together
TZ = "Europe/Berlin"
CFG = VeeConfig(timezone=TZ, high_kwh=5.0, low_kwh=0.0)
HOURS = np.arange(96) / 4.0
SHAPE = 0.15 + 0.25 * np.exp(-(((HOURS - 19.0) / 2.5) ** 2)) + 0.1 * (HOURS > 7)


def day_frame(meters: list[str], day: int, days: int) -> pd.DataFrame:
    """Every meter's import readings of UTC day ``day`` after ``T0`` (kWh), with what VEE is
    for: single missing intervals (never the window's first or last), a negative reading in
    a thousand, a spike in two thousand and, from the third week on (where like days are
    there to estimate from), runs of two and six hours missing."""
    n = len(meters)
    rng = np.random.default_rng(day)
    scale = np.random.default_rng(0).uniform(0.5, 2.0, (n, 1))
    values = np.round(scale * SHAPE * rng.gamma(8.0, 1 / 8.0, (n, 96)), 4)
    inner = np.ones(values.shape, bool)  # the window's first and last intervals stay good
    inner[:, 0] &= day != 0
    inner[:, -1] &= day != days - 1
    values[inner & (rng.random(values.shape) < 0.001)] = -0.05
    values[inner & (rng.random(values.shape) < 0.0005)] = 4.0
    keep = ~inner | (rng.random(values.shape) >= 0.003)
    if day >= 14:
        for length, share in ((8, 0.01), (24, 0.003)):
            rows = np.flatnonzero(rng.random(n) < share)
            at = rng.integers(0, 96 - length, len(rows))
            for r, c in zip(rows.tolist(), at.tolist(), strict=True):
                keep[r, c : c + length] = False
    starts = pd.date_range(T0 + timedelta(days=day), periods=96, freq="15min", tz="UTC")
    m, c = np.nonzero(keep)
    return pd.DataFrame(
        {
            "meter": np.array(meters, dtype=object)[m],
            "channel": "import",
            "interval_start": starts[c],  # as a Parquet file gives them
            "value_kwh": values[m, c],
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


def validate(
    store: Store, meters: list[str], days: int, partition: int, now: datetime
) -> list[ChannelVee]:
    """VEE over the ingested window, as ``openmeg vee run`` does it (``vee_channel``)."""
    v = ValidatedReadings(store, "bench")
    end = T0 + timedelta(days=days)
    out: list[ChannelVee] = []
    for lo in range(0, len(meters), partition):
        part = meters[lo : lo + partition]
        out += vee_channel(v, part, "import", T0, end, CFG, active=True, now=now)
    return out


def run(
    store: Store, meters: list[str], days: int, partition: int
) -> dict[str, tuple[float, int, str]]:
    """Readings per second: ingest, VEE, ingest and VEE, redelivery, arrays, live boundaries
    (one day after ``days``), each with how many readings the figure is on and a unit."""
    readings = MeterReadings(store)
    known = set(meters)
    now = T0 + timedelta(days=days + 2)
    frames = [day_frame(meters, d, days) for d in range(days)]
    total = sum(len(f) for f in frames)
    start = time.perf_counter()
    for d, frame in enumerate(frames):
        report = readings.ingest(frame, meters=known, source=f"day-{d}.parquet", received_at=now)
        assert report.new == len(frame), report
    first = time.perf_counter() - start
    assert readings.count() == total
    start = time.perf_counter()
    outcomes = validate(store, meters, days, partition, now)
    vee_s = time.perf_counter() - start
    window = len(meters) * days * 96
    failed = sum(1 for o in outcomes if o.problem)
    versions = sum(o.new_versions for o in outcomes)
    flags = sum(k for o in outcomes for _, k in o.rules)
    assert failed == 0, [o.problem for o in outcomes if o.problem][:3]
    v = ValidatedReadings(store, "bench")
    _, quality = v.arrays(meters, "import", T0, T0 + timedelta(days=days))
    assert (quality > 0).all(), "VEE left intervals of the window without a value"
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
    assert int((~np.isnan(values)).sum()) == total
    last = frames[-1]
    col = (pd.DatetimeIndex(last["interval_start"]) - pd.Timestamp(T0)) // pd.Timedelta("15min")
    row = pd.Index(meters).get_indexer(last["meter"])
    np.testing.assert_array_equal(
        values[row, np.asarray(col, np.int64)], last["value_kwh"].to_numpy()
    )
    live_day = T0 + timedelta(days=days)
    batches = [boundary(meters, live_day + k * timedelta(minutes=15), k) for k in range(96)]
    start = time.perf_counter()
    for cols in batches:
        assert store_columns(store, cols, now).new == len(meters)
    live = time.perf_counter() - start
    print(
        f"# {store.dialect}: {total} readings ingested in {first:.2f} s, validated in"
        f" {vee_s:.2f} s ({versions} new versions, {flags} flags); a redelivery of"
        f" {offered} in {again:.2f} s; read back as arrays in {read:.2f} s;"
        f" 96 boundaries of {len(meters)} in {live:.2f} s",
        file=sys.stderr,
    )
    return {  # per second, how many the figure is on, and of what
        "mdms_ingest_readings_per_s": (total / (first + vee_s), total, "readings"),
        "mdms_ingest_only_readings_per_s": (total / first, total, "readings"),
        "vee_readings_per_s": (window / vee_s, window, "intervals"),
        "vee_new_versions": (versions, window, "versions"),
        "vee_flags": (flags, window, "flags"),
        "vee_meters_not_validated": (failed, len(meters), "meters"),
        "mdms_redelivery_readings_per_s": (offered / again, offered, "readings"),
        "mdms_arrays_readings_per_s": (total / read, total, "readings"),
        "mdms_live_readings_per_s": (96 * len(meters) / live, 96 * len(meters), "readings"),
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
    ap.add_argument("--partition", type=int, default=0, help="meters a VEE call (0: all)")
    args = ap.parse_args()
    meters = [f"m-{i:05d}" for i in range(args.meters)]
    partition = args.partition or args.meters
    results: list[tuple[str, dict[str, tuple[float, int, str]]]] = []
    with tempfile.TemporaryDirectory() as tmp:
        store = Store(sqlite_url(Path(tmp) / "bench.db"))
        try:
            results.append(("", run(store, meters, args.days, partition)))
        finally:
            store.close()
    if not args.no_pg:
        with pg_database(args.pg) as url:
            store = Store(url)
            try:
                results.append(("_pg", run(store, meters, args.days, partition)))
            finally:
                store.close()
    targets = {"mdms_ingest_readings_per_s": TARGET, "vee_readings_per_s": TARGET}
    for suffix, figures in results:
        store = "postgresql" if suffix else "sqlite"
        for metric, (value, n, what) in figures.items():
            rate = metric.endswith("_per_s")
            line: dict[str, object] = {
                "metric": metric + suffix,
                "value": round(value),
                "unit": f"{what}/s" if rate else what,
            }
            if metric in targets:
                line["target"] = f">={targets[metric]}"
            if metric == "mdms_ingest_readings_per_s":
                line["note"] = "end to end: ingest, then VEE of the window, durably stored"
            print(json.dumps({**line, "of": n, "store": store}))


if __name__ == "__main__":
    main()
