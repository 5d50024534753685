"""The newcomer's metering walk from the command line: ``simulate --store``, the meter file
accepted by ``meters import``, ``run --start``, and messages that say what is missing."""

import json
import subprocess
import sys
from contextlib import closing
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa

from openmeg.cli.start_time import start_instant
from openmeg.core.store import Store, sqlite_url
from openmeg.operation.mdms.store import MeterReadings

METERS = 22  # the demo's meters (households, building and owners, businesses, community)


def _openmeg(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "openmeg", *args],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=cwd,
    )


def test_start_is_a_date_or_an_instant_utc_unless_zoned() -> None:
    assert start_instant("2026-06-01") == datetime(2026, 6, 1, tzinfo=UTC)
    assert start_instant("2026-06-01T12:30") == datetime(2026, 6, 1, 12, 30, tzinfo=UTC)
    assert start_instant("2026-10-01T00:00-04:00") == datetime(2026, 10, 1, 4, tzinfo=UTC)
    assert start_instant(" 2026-06-01T10:00Z ") == datetime(2026, 6, 1, 10, tzinfo=UTC)
    with pytest.raises(ValueError, match=r"neither a date .* nor an ISO 8601 instant"):
        start_instant("June 1st")


@pytest.fixture(params=["sqlite", "postgresql"])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A store URL on SQLite or a fresh PostgreSQL database."""
    if request.param == "sqlite":
        return sqlite_url(tmp_path / "a.db")
    return str(request.getfixturevalue("pg_url"))


def test_simulate_store_holds_what_meters_import_takes_from_its_file(
    tmp_path: Path, url: str
) -> None:
    a, b = url, sqlite_url(tmp_path / "b.db")
    out = tmp_path / "oct"
    run = _openmeg(
        *("simulate", "--days", "2", "--step", "15min", "--out", str(out)),
        *("--start", "2026-10-01T00:00-04:00", "--store", a),
    )
    assert run.returncode == 0, run.stderr
    n = METERS * 2 * 2 * 96  # meters x channels x days x quarter hours
    shown = sa.make_url(a).render_as_string(hide_password=True)
    assert f"stored in {shown}: {n} new readings, 0 already stored, 0 conflicting" in run.stdout
    file = pd.read_parquet(out / "meters.parquet")
    assert list(file.columns) == ["meter", "channel", "interval_start", "value_kwh"]
    assert len(file) == n
    assert file.interval_start.min() == pd.Timestamp("2026-10-01T04:00Z")
    assert file.interval_start.max() == pd.Timestamp("2026-10-03T03:45Z")
    assert file.head(2).channel.tolist() == ["import", "export"]
    # the store against the summary's per-meter energy, computed from the steps, not the file
    summary = json.loads((out / "summary.json").read_text())
    t0, t1 = datetime(2026, 10, 1, 4, tzinfo=UTC), datetime(2026, 10, 3, 4, tzinfo=UTC)
    with closing(Store(a)) as db:
        readings = MeterReadings(db)
        assert readings.count() == n
        for meter in ("m-h01", "m-bldg1", "m-factory"):
            for channel in ("import", "export"):
                stored = readings.series(meter, channel, t0, t1)
                assert len(stored) == 192
                assert stored.sum() == pytest.approx(
                    summary["meters"][meter][f"{channel}_kwh"], abs=1e-6
                )
        first = readings.matrix(sorted(set(file.meter)), "import", t0, t1)
    # the same file through meters import: into an empty store, every reading new ...
    again = _openmeg("meters", "import", str(out / "meters.parquet"), "--store", b)
    assert again.returncode == 0, again.stderr
    assert f"meters.parquet: {n} new, 0 already stored, 0 conflicting" in again.stdout
    with closing(Store(b)) as db:
        second = MeterReadings(db).matrix(sorted(set(file.meter)), "import", t0, t1)
    np.testing.assert_array_equal(first.to_numpy(), second.to_numpy())
    # ... and into the store simulate filled, nothing new
    same = _openmeg("meters", "import", str(out / "meters.parquet"), "--store", a)
    assert same.returncode == 0, same.stderr
    assert f"meters.parquet: 0 new, {n} already stored, 0 conflicting" in same.stdout


def test_simulate_without_store_says_how_to_import_its_file(tmp_path: Path) -> None:
    out = tmp_path / "o"
    run = _openmeg("simulate", "--days", "1", "--step", "15min", "--out", str(out))
    assert run.returncode == 0, run.stderr
    # by default from new year's midnight in Rome, the demo's time zone (UTC+1 in winter)
    hint = f"openmeg meters import {out / 'meters.parquet'} --received-at "
    assert hint + "2026-01-01T23:00:00Z (or simulate with --store)" in run.stdout
    file = pd.read_parquet(out / "meters.parquet")
    assert file.interval_start.min() == pd.Timestamp("2025-12-31T23:00Z")
    assert len(file) == METERS * 2 * 96


def test_simulate_end_must_come_after_its_start(tmp_path: Path) -> None:
    run = _openmeg(
        *("simulate", "--start", "2026-10-02", "--end", "2026-10-01T23:00+01:00"),
        *("--out", str(tmp_path / "o")),
    )
    assert run.returncode == 2
    assert "error: --end 2026-10-01T23:00+01:00 is not after the start 2026-10-02T00:00Z" in (
        run.stderr
    )
    assert not (tmp_path / "o").exists()


def test_simulate_store_needs_quarter_hour_steps(tmp_path: Path) -> None:
    url = sqlite_url(tmp_path / "x.db")
    run = _openmeg(
        "simulate", "--days", "1", "--step", "1h", "--store", url, "--out", str(tmp_path / "o")
    )
    assert run.returncode == 2
    assert "--store needs 15-minute readings: --step 1h" in run.stderr
    assert not (tmp_path / "x.db").exists()


def test_simulate_refuses_a_store_it_cannot_open_before_simulating(tmp_path: Path) -> None:
    out = tmp_path / "o"
    run = _openmeg("simulate", "--days", "1", "--store", "nosuchdb://x", "--out", str(out))
    assert run.returncode == 2
    assert "error: --store 'nosuchdb://x' cannot be opened: cannot use store URL" in run.stderr
    assert not out.exists()


def test_import_of_future_readings_needs_their_reception_instant(tmp_path: Path) -> None:
    url = sqlite_url(tmp_path / "m.db")
    file = tmp_path / "ahead.csv"
    file.write_text(
        "meter,channel,interval_start,value_kwh\n"
        "m-h01,import,2040-01-01T00:00:00Z,0.25\n"
        "m-h01,import,2040-01-01T00:15:00Z,0.5\n"
    )
    refused = _openmeg("meters", "import", str(file), "--store", url)
    assert refused.returncode == 2
    assert "ahead.csv row 1: interval start 2040-01-01T00:00:00+00:00 is in the future" in (
        refused.stderr
    )
    taken = _openmeg(
        *("meters", "import", str(file), "--store", url, "--received-at", "2040-01-01T00:30Z")
    )
    assert taken.returncode == 0, taken.stderr
    assert "ahead.csv: 2 new, 0 already stored, 0 conflicting" in taken.stdout
    bad = _openmeg("meters", "import", str(file), "--store", url, "--received-at", "soon")
    assert bad.returncode == 2 and "--received-at" in bad.stderr
    gone = _openmeg("meters", "import", str(tmp_path / "nowhere.csv"), "--store", url)
    assert gone.returncode == 2 and "nowhere.csv: no such file" in gone.stderr


def test_commands_on_an_empty_period_say_what_is_missing(tmp_path: Path) -> None:
    url = sqlite_url(tmp_path / "empty.db")
    out = tmp_path / "h01.csv"
    export = _openmeg(
        *("meters", "export", str(out), "--meter", "m-h01", "--store", url),
        *("--start", "2026-10-01", "--end", "2026-11-01"),
    )
    assert export.returncode == 1
    assert (
        "no readings of m-h01 from 2026-10-01 00:00 to 2026-11-01 00:00 UTC in the store: "
        "import them (openmeg meters import FILE)" in export.stderr
    )
    assert not out.exists()
    span = ("--from", "2026-06-01", "--to", "2026-06-02", "--store", url)
    revenue = _openmeg("revenue", *span)
    assert revenue.returncode == 1
    assert "no readings of the devices' revenue meters from 2026-06-01 00:00" in revenue.stderr
    assert "openmeg run --start 2026-06-01" in revenue.stderr
    accounts = _openmeg("trade", "accounts", "--customer", "h01", *span)
    assert accounts.returncode == 1
    assert "h01 (m-h01): no interval from 2026-06-01 00:00 to 2026-06-02 00:00 UTC" in (
        accounts.stderr
    )
    settlement = _openmeg("market", "settlement", *span)
    assert settlement.returncode == 1
    assert "no settled interval from 2026-06-01 00:00 to 2026-06-02 00:00 UTC" in (
        settlement.stderr
    )


def test_run_start_begins_simulated_time_there(tmp_path: Path) -> None:
    url = sqlite_url(tmp_path / "live.db")
    run = _openmeg(
        *("run", "--start", "2026-06-01", "--speed", "600", "--step", "60", "--cycles", "40"),
        *("--no-status", "--no-api", "--modbus-port", "0", "--store", url),
        cwd=tmp_path,
    )
    assert run.returncode == 0, run.stderr
    assert f"stopped cleanly; points saved in {url}" in run.stdout
    summary = run.stdout.split("stopped cleanly", 1)[1]
    assert "ran from 2026-06-01 00:00 to 2026-06-01 00:" in summary
    assert "VEE: 0 local days validated (none closed yet; Europe/Rome)" in summary
    assert "settled on the validated series: no local day yet" in summary
    with closing(Store(url)) as db:
        frame = MeterReadings(db).long_frame(
            ["m-h01", "m-factory"],
            datetime(2026, 5, 1, tzinfo=UTC),
            datetime(2026, 7, 1, tzinfo=UTC),
        )
    # 40 one-minute cycles from midnight: the quarter hours 00:00 and 00:15 are complete
    starts = sorted(set(frame.interval_start))
    assert starts == [pd.Timestamp("2026-06-01T00:00Z"), pd.Timestamp("2026-06-01T00:15Z")]
    assert len(frame) == 2 * 2 * 2  # meters x channels x intervals
    both = _openmeg(
        *("run", "--start", "2026-06-01", "--time-server", "127.0.0.1:1", "--cycles", "1"),
        cwd=tmp_path,
    )
    assert both.returncode == 2 and "--start and --time-server both set the time" in both.stderr
    bad = _openmeg("run", "--start", "midsummer", "--cycles", "1", cwd=tmp_path)
    assert bad.returncode == 2 and "neither a date" in bad.stderr
    real = _openmeg("run", "--start", "2026-06-01", "--field", "site", cwd=tmp_path)
    assert real.returncode == 2
    assert "--start moves simulated time, and this site's field is real" in real.stderr
