"""Hostile input at the metering commands: a clear message, exit 2, nothing changed, no
traceback (a refused file's problems shortened, instants out of range, a store URL that opens
nothing, a bills folder that cannot be written)."""

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from openmeg.cli import app
from openmeg.core.store import Store
from openmeg.operation.mdms.store import MeterReadings

T0 = datetime(2026, 10, 1, tzinfo=UTC)
RANGE = "instants from 1900-01-01 to 2199-12-31 (UTC) are accepted"


@dataclass
class Done:
    code: int
    stdout: str
    stderr: str


def _openmeg(*args: str) -> Done:
    result = CliRunner().invoke(app, list(args))
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    return Done(result.exit_code, result.stdout, result.stderr)


@pytest.fixture
def url(tmp_path: Path) -> str:
    return f"sqlite+pysqlite:///{tmp_path / 'meg.db'}"


def _count(url: str) -> int:
    db = Store(url)
    try:
        return MeterReadings(db).count()
    finally:
        db.close()


def _csv(path: Path, values: list[float]) -> Path:
    pd.DataFrame(
        {
            "meter": "m-h01",
            "channel": "import",
            "interval_start": [
                (T0 + timedelta(minutes=15 * i)).isoformat() for i in range(len(values))
            ],
            "value_kwh": values,
        }
    ).to_csv(path, index=False)
    return path


def test_import_refuses_what_no_meter_of_the_site_measures(tmp_path: Path, url: str) -> None:
    # the demo site's meters measure at most 1902.7 kW: 475.675 kWh in 15 minutes
    done = _openmeg("meters", "import", str(_csv(tmp_path / "r.csv", [0.2, 1e300])), "--store", url)
    assert done.code == 2
    assert done.stderr == (
        "error: r.csv row 2: 1e+300 kWh is more than a meter of this site measures in 15 "
        "minutes (475.675 kWh)\n"
    )
    assert _count(url) == 0


def test_import_of_a_header_only_file_is_zero_new(tmp_path: Path, url: str) -> None:
    done = _openmeg("meters", "import", str(_csv(tmp_path / "h.csv", [])), "--store", url)
    assert done.code == 0, done.stderr
    assert done.stdout == "h.csv: 0 new, 0 already stored, 0 conflicting (kept aside, not stored)\n"


def test_a_refused_file_says_its_first_20_problems_and_how_many_more(
    tmp_path: Path, url: str
) -> None:
    done = _openmeg(
        "meters", "import", str(_csv(tmp_path / "n.csv", [float("nan")] * 25)), "--store", url
    )
    assert done.code == 2
    lines = done.stderr.splitlines()
    assert len(lines) == 21
    assert lines[0] == "error: n.csv row 1: value nan is not a number"
    assert lines[19] == "error: n.csv row 20: value nan is not a number"
    assert lines[20] == "error: and 5 more problems; fix these and try again to see the rest"
    assert _count(url) == 0


@pytest.mark.parametrize(
    ("start", "end", "said"),
    [
        ("2026-10-01", "9999-12-31", f"error: '9999-12-31' is out of range: {RANGE}\n"),
        ("0001-01-01", "2026-10-02", f"error: '0001-01-01' is out of range: {RANGE}\n"),
        (
            "2026-10-02",
            "2026-10-01",
            "error: --start 2026-10-02 is not before --end 2026-10-01: give a period that ends "
            "after it starts\n",
        ),
    ],
)
def test_export_refuses_instants_out_of_range(
    tmp_path: Path, url: str, start: str, end: str, said: str
) -> None:
    out = tmp_path / "out.csv"
    done = _openmeg(
        "meters", "export", str(out), "--meter", "m-h01", "--start", start, "--end", end,
        "--store", url,
    )  # fmt: skip
    assert (done.code, done.stderr) == (2, said)
    assert not out.exists()


def test_run_refuses_a_start_out_of_range() -> None:
    done = _openmeg("run", "--start", "2300-01-01", "--cycles", "1")
    assert done.code == 2
    assert done.stderr.startswith("error: --start '2300-01-01' is neither a date")
    assert done.stderr.endswith(f"'2300-01-01' is out of range: {RANGE}\n")


@pytest.mark.parametrize(
    ("store", "said"),
    [
        (
            "foo://u:secret@bar",
            "error: --store 'foo://u:***@bar' cannot be opened: cannot use store URL (Can't "
            "load plugin: sqlalchemy.dialects:foo); give one like sqlite+pysqlite:///meg.db or "
            "postgresql+psycopg://USER@HOST/DB\n",
        ),
        (
            "postgresql+psycopg://u:secret@127.0.0.1:1/db",
            "error: --store 'postgresql+psycopg://u:***@127.0.0.1:1/db' cannot be opened: "
            "connection failed",
        ),
        (
            "sqlite+pysqlite:////nonexistent-folder/x.db",
            "error: --store 'sqlite+pysqlite:////nonexistent-folder/x.db' cannot be opened: "
            "unable to open database file",
        ),
    ],
)
def test_a_store_that_cannot_be_opened_is_one_line(tmp_path: Path, store: str, said: str) -> None:
    csv = _csv(tmp_path / "r.csv", [0.2])
    for args in (
        ("meters", "import", str(csv)),
        ("vee", "run", "--period", "2026-10"),
        ("bill", "--period", "2026-10", "--out", str(tmp_path / "bills")),
    ):
        done = _openmeg(*args, "--store", store)
        assert done.code == 2, (args, done.stderr)
        assert done.stderr.startswith(said), (args, done.stderr)
        assert len(done.stderr.splitlines()) == 1, done.stderr
        assert "secret" not in done.stderr
    assert not (tmp_path / "bills").exists()


@pytest.mark.parametrize("under", ["bills", ""])
def test_bill_refuses_a_folder_it_cannot_write_before_issuing(
    tmp_path: Path, url: str, under: str
) -> None:
    (tmp_path / "a-file").write_text("not a folder")
    out = tmp_path / "a-file" / under if under else tmp_path / "a-file"
    done = _openmeg("bill", "--period", "2026-10", "--out", str(out), "--store", url)
    assert done.code == 2
    assert done.stderr == (
        f"error: --out {out}: cannot write bills there ({tmp_path / 'a-file'} is not a "
        "folder); give a folder you can write to; nothing issued\n"
    )
    assert not (tmp_path / "meg.db").exists()


def test_run_refuses_a_store_it_cannot_open(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENMEG_KEYSTORE", str(tmp_path / "keys"))
    monkeypatch.chdir(tmp_path)
    done = _openmeg(
        *("run", "--cycles", "1", "--no-status", "--no-api", "--modbus-port", "0"),
        *("--store", "sqlite+pysqlite:////nonexistent-folder/x.db"),
    )
    assert (done.code, done.stderr) == (
        2,
        "error: --store 'sqlite+pysqlite:////nonexistent-folder/x.db' cannot be opened: "
        "unable to open database file\n",
    )
