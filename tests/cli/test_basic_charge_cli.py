"""``openmeg vee run`` then ``openmeg basic-charge``: a statement per owner, their lines printed,
and a building that does not exist refused (exit 2)."""

from datetime import datetime
from pathlib import Path

from typer.testing import CliRunner

from openmeg.cli import app
from openmeg.core.site import load_site
from openmeg.core.store import Store, sqlite_url
from openmeg.operation.mdms.store import MeterReadings
from tests.provider.test_basic_charge_run import _readings


def test_basic_charge_of_a_building(tmp_path: Path) -> None:
    url = sqlite_url(tmp_path / "meg.db")
    db = Store(url)
    db.create_schema()
    meters = {m.id for m in load_site("demo").meters}
    for owner in ("o1", "o2", "o3", "o4"):
        MeterReadings(db).ingest(
            _readings(owner, "2026-09-01"),
            meters=meters,
            source="test",
            received_at=datetime(2026, 11, 2),
        )
    db.close()
    run = CliRunner().invoke
    vee = run(app, ["vee", "run", "--period", "2026-10", "--store", url])
    assert vee.exit_code == 0, vee.output
    assert "m-o3 import: 672 new versions, 672 estimated; flags: gap 672" in vee.output
    out = tmp_path / "statements"
    args = ["basic-charge", "--building", "bldg1", "--month", "2026-10", "--store", url]
    done = run(app, [*args, "--out", str(out)])
    assert done.exit_code == 0, done.output
    assert done.output.splitlines()[-5:] == [
        "o1: peak 10.00 kW, 31/31 days, USD 250.70",
        "o2: peak 12.00 kW, 31/31 days, USD 310.50",
        "o3: peak 30.00 kW, 31/31 days, USD 462.30  (672 estimated intervals)",
        "o4: peak 20.00 kW, 31/31 days, USD 356.50",
        "total: USD 1,380.00",
    ]
    assert len(list(out.glob("basic-charge-o*-2026-10.html"))) == 4
    refused = run(app, ["basic-charge", "--building", "b9", "--month", "2026-10", "--store", url])
    assert refused.exit_code == 2
    assert "no building 'b9'; buildings: bldg1" in refused.output
