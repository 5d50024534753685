"""``openmeg vee run`` says what is missing and exits 1 when it could not do its work."""

from pathlib import Path

import pandas as pd
from typer.testing import CliRunner

from openmeg.cli import app


def test_no_readings_at_all_is_a_failure_that_says_what_to_do(tmp_path: Path) -> None:
    db = f"sqlite+pysqlite:///{tmp_path / 'empty.db'}"
    done = CliRunner().invoke(app, ["vee", "run", "--period", "2026-10", "--store", db])
    assert done.exit_code == 1
    assert "error: no readings for 2026-10: import them (openmeg meters import)" in done.stderr


def test_a_channel_that_cannot_be_estimated_fails_the_run(tmp_path: Path) -> None:
    db = f"sqlite+pysqlite:///{tmp_path / 'meg.db'}"
    idx = pd.date_range("2026-10-04 22:00", periods=96, freq="15min", tz="UTC")  # 5 Oct, local
    frame = pd.DataFrame(
        {"meter": "m-h01", "channel": "import", "interval_start": idx, "value_kwh": 0.25}
    ).drop(index=range(10, 30))  # five hours missing and no like day before
    frame.to_csv(tmp_path / "day.csv", index=False)
    run = CliRunner().invoke
    assert run(app, ["meters", "import", str(tmp_path / "day.csv"), "--store", db]).exit_code == 0
    done = run(app, ["vee", "run", "--period", "2026-10", "--store", db])
    assert done.exit_code == 1
    assert (
        "m-h01 import: cannot estimate: no like-day history for 2026-09-30 22:00:00+00:00"
        in done.stderr
    )
    assert "error: 1 meter channel(s) of 2026-10 could not be validated" in done.stderr
    assert "no readings in 2026-10, nothing validated: m-h02 import, m-h03 import" in done.stderr
