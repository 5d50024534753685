"""``openmeg revenue --by``: the rows of each period on the terminal, not only in ``--csv``."""

import subprocess
import sys
from pathlib import Path

from openmeg.core.store import Store, sqlite_url
from tests.customer.test_revenue_calc import _fill


def test_revenue_prints_the_rows_of_each_period(tmp_path: Path) -> None:
    url = sqlite_url(tmp_path / "meg.db")
    db = Store(url)
    db.create_schema()
    _fill(db)  # pv-h01 and bess-h01, 10:00-11:00 UTC (12:00 in Rome), hand-computed there
    db.close()
    args = ["--from", "2026-06-01T10:00Z", "--to", "2026-06-01T11:00Z", "--store", url]
    devices = ["--device", "pv-h01", "--device", "bess-h01"]

    def lines(by: str) -> list[str]:
        done = subprocess.run(
            [sys.executable, "-m", "openmeg", "revenue", *args, *devices, "--by", by],
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert done.returncode == 0, done.stderr
        return [line.split() for line in done.stdout.splitlines()[3:]]

    # bess-h01 per interval: -0.325, 0.09, 0, 0.01 (-0.225); pv-h01 0.471 in the hour
    assert lines("hour") == [
        ["revenue", "by", "hour", "(local", "starts,", "Europe/Rome):"],
        ["pv-h01", "bess-h01", "all", "devices"],
        ["hour"],
        ["2026-06-01", "12:00", "0.47", "-0.23", "0.25"],
    ]
    rows = lines("interval")[3:]
    assert [r[:2] for r in rows] == [["2026-06-01", f"12:{m:02d}"] for m in (0, 15, 30, 45)]
    assert [r[3] for r in rows] == ["-0.33", "0.09", "0.00", "0.01"]
    assert lines("month")[3] == ["2026-06", "0.47", "-0.23", "0.25"]
    assert lines("day")[3] == ["2026-06-01", "0.47", "-0.23", "0.25"]
