"""``openmeg simulate`` end to end, and its refusal of bad input without writing anything."""

import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml

from openmeg.core.site import SITES_DIR


def _openmeg(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "openmeg", *args], capture_output=True, text=True, timeout=300
    )


def test_simulate_two_days_writes_summary_parquet_and_report(tmp_path: Path) -> None:
    out = tmp_path / "run"
    run = _openmeg(
        "simulate",
        "--site",
        "demo",
        "--days",
        "2",
        "--step",
        "15min",
        "--start",
        "2026-07-21T00:00:00Z",
        "--out",
        str(out),
    )
    assert run.returncode == 0, run.stderr
    summary = json.loads((out / "summary.json").read_text())
    for key in (
        "energy_kwh",
        "import_kwh",
        "export_kwh",
        "load_kwh",
        "generation_kwh",
        "storage_charge_kwh",
        "storage_discharge_kwh",
        "losses_kwh",
        "unserved_kwh",
        "self_sufficiency",
        "peak_import_kw",
        "islanded_hours",
        "co2_kg",
        "balance_error_kwh",
    ):
        assert key in summary
    assert summary["steps"] == 192
    assert summary["islanded_hours"] == pytest.approx(4.0)  # the demo's July outage
    assert summary["balance_error_kwh"] < 1e-9
    frame = pd.read_parquet(out / "timeseries.parquet")
    assert len(frame) == 192 and "bess-community.soc" in frame.columns
    assert "sensor-chp1.temperature_c" in frame.columns
    html = (out / "report.html").read_text()
    assert html.count("<img") == 7 and "Frequency during island periods" in html


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--step", "7min"], "must divide a day"),
        (["--step", "fast"], "not understood"),
        (["--start", "yesterday"], "Invalid isoformat"),
    ],
)
def test_bad_options_exit_two_and_write_nothing(
    tmp_path: Path, args: list[str], message: str
) -> None:
    out = tmp_path / "run"
    run = _openmeg("simulate", "--days", "1", "--out", str(out), *args)
    assert run.returncode == 2
    assert message in run.stderr
    assert not out.exists()


def test_bad_site_exits_two_and_writes_nothing(tmp_path: Path) -> None:
    data = yaml.safe_load((SITES_DIR / "demo.yaml").read_text())
    data["devices"][0]["bus"] = "Bus 99"
    site = tmp_path / "bad.yaml"
    site.write_text(yaml.safe_dump(data))
    out = tmp_path / "run"
    run = _openmeg("simulate", "--site", str(site), "--days", "1", "--out", str(out))
    assert run.returncode == 2
    assert "devices[0](load).bus: bus 'Bus 99' is not in the network" in run.stderr
    assert not out.exists()
