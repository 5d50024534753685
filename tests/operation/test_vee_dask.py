"""``vee run`` on Dask workers: the meters validated in partitions on a LocalCluster of two
workers, writing to PostgreSQL, leave exactly what the in-process run leaves (outcomes,
versions, flags, days' status), row for row; a SQLite store is refused for workers."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

from openmeg.cli import app
from openmeg.core.errors import StoreError
from openmeg.core.partitions import (
    ClusterError,
    chunks,
    cluster,
    run_partitions,
    shared_store_url,
)
from openmeg.core.site import Site, load_site
from openmeg.core.store import Store
from openmeg.operation.mdms.store import MeterReadings
from openmeg.operation.mdms.vee_partitions import vee_site_partitioned
from openmeg.operation.mdms.vee_run import vee_site

TZ = "Europe/Rome"
START = pd.Timestamp("2026-10-01", tz=TZ)
END = pd.Timestamp("2026-11-01", tz=TZ)
NOW = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)


def readings(site: Site, seed: int = 7) -> pd.DataFrame:
    """Six weeks of September as history and October for every meter but m-community, with
    what VEE has work on: short gaps (interpolated), an 8-hour gap (like days), spikes,
    negative values; m-shop has no history and a long gap (cannot be estimated); export for
    the houses with PV; m-bldg1 is its owners' sub-meters plus the common part."""
    rng = np.random.default_rng(seed)
    idx = pd.date_range(
        pd.Timestamp("2026-09-10", tz=TZ).tz_convert("UTC"),
        END.tz_convert("UTC"),
        freq="15min",
        inclusive="left",
    )
    hour = idx.tz_convert(TZ).hour.to_numpy()
    sunny = (hour >= 10) & (hour < 15)
    october = idx >= START.tz_convert("UTC")
    frames = []
    values: dict[str, np.ndarray] = {}
    for m in site.meters:
        if m.id in ("m-community", "m-bldg1"):
            continue
        kwh = np.round(rng.gamma(2.0, 0.1, len(idx)) + 0.05, 4)
        values[m.id] = kwh
    values["m-bldg1"] = np.round(
        sum(values[f"m-o{i}"] for i in range(1, 5)) + rng.gamma(2.0, 0.05, len(idx)), 4
    )
    oct_at = np.flatnonzero(october)
    for k, (meter, kwh) in enumerate(values.items()):
        keep = np.ones(len(idx), bool)
        keep[oct_at[100 + 7 * k : 103 + 7 * k]] = False  # a short gap each
        if k % 3 == 0:
            keep[oct_at[1500 + k : 1532 + k]] = False  # 8 hours: a like day's profile
        if k % 4 == 1:
            kwh[oct_at[2000 + k]] = 4.0  # a spike: over 4 x its day's third-highest (< 1 kWh)
        if k % 5 == 2:
            kwh[oct_at[2500 + k]] = -0.1  # a negative reading
        if meter == "m-shop":
            keep &= october
            keep[oct_at[600:640]] = False
        frames.append(
            pd.DataFrame(
                {"meter": meter, "channel": "import", "interval_start": idx, "value_kwh": kwh}
            )[keep]
        )
        if meter in ("m-h01", "m-h02", "m-h03", "m-o1"):
            pv = np.where(sunny, np.round(rng.uniform(0.2, 0.6, len(idx)), 4), 0.0)
            frames.append(
                pd.DataFrame(
                    {"meter": meter, "channel": "export", "interval_start": idx, "value_kwh": pv}
                )
            )
    return pd.concat(frames, ignore_index=True)


def ingest(store: Store, site: Site, frame: pd.DataFrame, at: datetime = NOW) -> None:
    MeterReadings(store).ingest(
        frame, meters={m.id for m in site.meters}, source="test", received_at=at
    )


def tables(store: Store) -> dict[str, list[tuple[object, ...]]]:
    """Every row VEE wrote, in a stable order (the flags without their serial id)."""
    q = {
        "validated_readings": "SELECT * FROM validated_readings ORDER BY 1, 2, 3, 4",
        "vee_flag_runs": "SELECT meter, channel, interval_start, intervals, rule, detail, "
        "created_at FROM vee_flag_runs ORDER BY 1, 2, 3, 5, 4",
        "vee_status": "SELECT * FROM vee_status ORDER BY 1, 2, 3",
    }
    with store.engine.connect() as conn:
        return {t: [tuple(r) for r in conn.execute(sa.text(sql)).all()] for t, sql in q.items()}


@pytest.fixture(scope="module")
def client() -> Iterator[object]:
    with cluster(workers=2) as c:
        yield c


@pytest.fixture
def two_pg(pg_admin_url: str) -> Iterator[tuple[Store, Store]]:
    """Two fresh PostgreSQL databases: one for the in-process run, one for the workers."""
    admin = sa.create_engine(pg_admin_url, isolation_level="AUTOCOMMIT")
    names = [f"openmeg_test_{uuid.uuid4().hex[:12]}" for _ in range(2)]
    with admin.connect() as conn:
        for n in names:
            conn.execute(sa.text(f'CREATE DATABASE "{n}"'))
    stores = [Store(pg_admin_url.rsplit("/", 1)[0] + f"/{n}") for n in names]
    for s in stores:
        s.create_schema()
    try:
        yield stores[0], stores[1]
    finally:
        for s in stores:
            s.close()
        with admin.connect() as conn:
            for n in names:
                conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{n}" WITH (FORCE)'))
        admin.dispose()


def test_partitions_in_order_and_their_limits() -> None:
    assert chunks(list("abcde"), 2) == [["a", "b"], ["c", "d"], ["e"]]
    assert run_partitions(None, lambda p, k: [x * k for x in p], [[1, 2], [3]], k=10) == [
        [10, 20],
        [30],
    ]
    with pytest.raises(ValueError, match="at least one item"):
        chunks([1], 0)
    with pytest.raises(StoreError, match="cannot take writes from several worker processes"):
        shared_store_url("sqlite+pysqlite:///meg.db", writes=True)
    with pytest.raises(StoreError, match="in-memory SQLite store cannot be shared"):
        shared_store_url("sqlite+pysqlite://", writes=False)
    assert shared_store_url("sqlite+pysqlite:///meg.db", writes=False).endswith("/meg.db")
    assert shared_store_url("sqlite+pysqlite:///meg.db", writes=False).startswith(
        "sqlite+pysqlite:////"
    )


def test_vee_on_two_workers_equals_the_run_in_process(
    two_pg: tuple[Store, Store], client: object
) -> None:
    site = load_site("demo")
    here, there = two_pg
    frame = readings(site)
    for s in (here, there):
        ingest(s, site, frame)
    t0, t1 = START.to_pydatetime(), END.to_pydatetime()
    alone = list(vee_site(site, here, t0, t1, now=NOW))
    spread = vee_site_partitioned(site, there.url, t0, t1, now=NOW, client=client, size=3)
    assert all(o.flags is None for o in alone + spread)
    assert spread == alone
    # the run had work: estimates, every rule the data provokes, a meter it could not do
    by = {(o.meter, o.channel): o for o in alone}
    assert by["m-h01", "import"].estimated == 3 + 32
    assert dict(by["m-h02", "import"].rules)["spike"] >= 1
    assert dict(by["m-h03", "import"].rules)["negative"] == 1
    assert by["m-shop", "import"].problem.startswith("no like-day history")
    assert by["m-community", "import"].empty
    rows = tables(here)
    assert rows == tables(there)
    assert len(rows["validated_readings"]) > 0 and len(rows["vee_status"]) == 31 * (20 + 4)

    # m-h01's first short gap arrives late (0.5 kWh each): both validate October again alike
    oct_idx = pd.date_range(START.tz_convert("UTC"), END.tz_convert("UTC"), freq="15min")
    late = pd.DataFrame(
        {
            "meter": "m-h01",
            "channel": "import",
            "interval_start": oct_idx[100:103],
            "value_kwh": 0.5,
        }
    )
    later = datetime(2026, 11, 9, tzinfo=UTC)
    for s in (here, there):
        ingest(s, site, late, later)
    alone = list(vee_site(site, here, t0, t1, now=later))
    spread = vee_site_partitioned(site, there.url, t0, t1, now=later, client=client, size=4)
    assert spread == alone
    assert {(o.meter, o.channel): o for o in alone}["m-h01", "import"].estimated == 32
    assert tables(here) == tables(there)


def test_workers_refuse_a_sqlite_store_and_say_what_to_do(tmp_path: object) -> None:
    db = f"sqlite+pysqlite:///{tmp_path}/meg.db"
    done = CliRunner().invoke(
        app, ["vee", "run", "--period", "2026-10", "--store", db, "--workers", "2"]
    )
    assert done.exit_code == 2
    assert "cannot take writes from several worker processes" in done.stderr
    assert "give a PostgreSQL store" in done.stderr
    both = CliRunner().invoke(
        app,
        ["vee", "run", "--period", "2026-10", "--workers", "2", "--scheduler", "tcp://x:1"],
    )
    assert both.exit_code == 2
    assert "give --workers or --scheduler, not both" in both.stderr


def test_the_same_values_sent_again_and_an_existing_scheduler(client: object) -> None:
    from distributed import Client

    assert isinstance(client, Client)
    for _ in range(5):  # the values of the run before are released as these are sent
        assert run_partitions(client, dict, [[("a", 1)], [("b", 2)]], k="same") == [
            {"a": 1, "k": "same"},
            {"b": 2, "k": "same"},
        ]
    with cluster(scheduler=client.scheduler.address) as other:
        assert run_partitions(other, dict, [[("c", 3)]], k=1) == [{"c": 3, "k": 1}]
    with (
        pytest.raises(ValueError, match="not both"),
        cluster(workers=1, scheduler=client.scheduler.address),
    ):
        pass


def test_a_scheduler_out_of_reach_says_what_to_do() -> None:
    with (
        pytest.raises(
            ClusterError, match=r"cannot reach the Dask scheduler at tcp://127\.0\.0\.1:9"
        ),
        cluster(scheduler="tcp://127.0.0.1:9", timeout=0.5),
    ):
        pass
