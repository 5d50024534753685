"""``openmeg bill`` on Dask workers: the bills made in partitions of customers on a LocalCluster
of two workers (reading the validated arrays from PostgreSQL) and issued by the caller are the
bills of the in-process run, number for number and cent for cent; so are their revisions after
late readings."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pandas as pd
import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

from openmeg.cli import app
from openmeg.core.partitions import cluster
from openmeg.core.site import Site, load_site
from openmeg.core.store import Store, sqlite_url
from openmeg.operation.mdms.vee_run import vee_site
from openmeg.provider.billing_partitions import run_billing_partitioned
from openmeg.provider.billing_run import run_billing
from tests.operation import test_vee_dask as data

two_pg = data.two_pg
START, END, NOW = data.START, data.END, data.NOW


@pytest.fixture(scope="module")
def client() -> Iterator[object]:
    with cluster(workers=2) as c:
        yield c


def _issued(store: Store) -> list[tuple[object, ...]]:
    with store.engine.connect() as conn:
        rows = conn.execute(sa.text("SELECT * FROM issued_bills ORDER BY number, revision"))
        return [tuple(r) for r in rows.all()]


def _vee(store: Store, site: Site, now: datetime) -> None:
    list(vee_site(site, store, START.to_pydatetime(), END.to_pydatetime(), now=now))


def test_bills_made_on_two_workers_are_the_bills_made_in_process(
    two_pg: tuple[Store, Store], client: object
) -> None:
    site = load_site("demo")
    here, there = two_pg
    frame = data.readings(site)
    for s in (here, there):
        data.ingest(s, site, frame)
        _vee(s, site, NOW)
    alone = run_billing(site, here, "2026-10", now=NOW)
    spread = run_billing_partitioned(site, there, "2026-10", now=NOW, client=client, size=4)
    assert spread == alone
    assert _issued(here) == _issued(there)
    billed = [o for o in alone if o.issued is not None]
    assert len(billed) == 20 and all(o.outcome == "issued" for o in billed)
    assert [o.issued.number for o in billed if o.issued][:2] == ["2026-10-0001", "2026-10-0002"]
    (shop,) = [o for o in alone if o.customer == "shop"]
    assert shop.problem.startswith("no validated import reading of m-shop")

    # h01's three interpolated quarter hours arrive late, 0.5 kWh each: a revision
    idx = pd.date_range(START.tz_convert("UTC"), END.tz_convert("UTC"), freq="15min")
    late = pd.DataFrame(
        {"meter": "m-h01", "channel": "import", "interval_start": idx[100:103], "value_kwh": 0.5}
    )
    later = datetime(2026, 11, 9, tzinfo=UTC)
    for s in (here, there):
        data.ingest(s, site, late, later)
        _vee(s, site, later)
    alone = run_billing(site, here, "2026-10", now=later)
    spread = run_billing_partitioned(site, there, "2026-10", now=later, client=client, size=3)
    assert spread == alone
    assert _issued(here) == _issued(there)
    changed = {o.customer: o for o in alone if o.outcome == "revised"}
    assert list(changed) == ["h01"]
    r2 = changed["h01"].issued
    assert r2 is not None and r2.revision == 2 and r2.difference is not None
    # interpolated 3 x (0.5769 + 0.29) / 2 = 1.30035 kWh, delivered 1.5: +0.19965 kWh off-peak;
    # 390.815 kWh x 0.11 = 42.99 before, 391.01465 kWh x 0.11 = 43.01 after: +0.02
    assert [(x.description, x.quantity, x.rate, x.amount) for x in r2.note] == [
        ("energy, period 1", Decimal("0.19965"), Decimal("0.11"), Decimal("0.02"))
    ]
    assert r2.difference == Decimal("0.02")
    assert sum(o.outcome == "unchanged" for o in alone) == 19


def test_the_commands_on_workers_print_what_they_print_in_process(
    two_pg: tuple[Store, Store], tmp_path: Path
) -> None:
    site = load_site("demo")
    here, there = two_pg
    frame = data.readings(site, seed=11)
    for s in (here, there):
        data.ingest(s, site, frame)
    run = CliRunner().invoke
    dask = ["--workers", "2", "--partition-size", "5"]
    v1 = run(app, ["vee", "run", "--period", "2026-10", "--store", here.url])
    v2 = run(app, ["vee", "run", "--period", "2026-10", "--store", there.url, *dask])
    assert (v2.exit_code, v2.stdout, v2.stderr) == (v1.exit_code, v1.stdout, v1.stderr)
    assert v1.exit_code == 1 and "m-shop import: cannot estimate" in v1.stderr
    b1 = run(app, ["bill", "--period", "2026-10", "--store", here.url, "--out", str(tmp_path)])
    b2 = run(
        app,
        ["bill", "--period", "2026-10", "--store", there.url, "--out", str(tmp_path / "w"), *dask],
    )
    assert (b2.exit_code, b2.stdout, b2.stderr) == (b1.exit_code, b1.stdout, b1.stderr)
    assert "h01: " in b1.stdout and "bill 2026-10-0001 issued" in b1.stdout
    assert "shop: not billed: no validated import reading of m-shop" in b1.stderr


def test_workers_read_a_sqlite_file_but_not_a_store_in_memory(
    tmp_path: Path, client: object
) -> None:
    site = load_site("demo")
    here, there = (Store(sqlite_url(tmp_path / f"{n}.db")) for n in ("here", "there"))
    frame = data.readings(site, seed=3)
    try:
        for s in (here, there):
            s.create_schema()
            data.ingest(s, site, frame)
            _vee(s, site, NOW)
        alone = run_billing(site, here, "2026-10", now=NOW)
        spread = run_billing_partitioned(site, there, "2026-10", now=NOW, client=client, size=7)
        assert spread == alone and sum(o.issued is not None for o in alone) == 20
        assert _issued(here) == _issued(there)
    finally:
        here.close()
        there.close()
    done = CliRunner().invoke(
        app, ["bill", "--period", "2026-10", "--store", "sqlite+pysqlite://", "--workers", "2"]
    )
    assert done.exit_code == 1
    assert "an in-memory SQLite store cannot be shared with worker processes" in done.stderr
