"""The README's metering walk, from an empty folder, in the order the README gives; its live
day checked: all 96 quarter hours of the local day stored, validated by the automatic VEE and
settled on the validated series (each settled position equal to the validated one)."""

import re
from contextlib import closing
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from openmeg.core.site import load_site
from openmeg.core.store import Store, sqlite_url
from openmeg.operation.mdms.store import MeterReadings
from openmeg.operation.mdms.validated import ValidatedReadings
from tests.cli.doc_walk import blocks, commands, run_page

README = (Path(__file__).parents[2] / "README.md").read_text()
DAY = pd.Timestamp("2026-06-01", tz="Europe/Rome")  # the live walk's local day
SETTLED = re.compile(
    r"^(\S+): local ([+-][\d.]+) kWh, utility ([+-][\d.]+) kWh, paid ([+-][\d.]+) "
    r"\(2026-06-01 rev (\d+)\)$",
    re.M,
)


def _walk() -> str:
    found = re.search(r"<!-- walk: begin -->\n(.*?)<!-- walk: end -->", README, re.S)
    assert found, "the README has lost its walk markers"
    return found.group(1)


def test_every_dated_command_of_the_readme_is_a_step_of_the_walk() -> None:
    listed = blocks(README.split("## Commands", 1)[1].split("\n## ", 1)[0])[0][2]
    dated = [c for c in commands(listed) if any(re.search(r"\b20\d\d-\d\d", a) for a in c)]
    assert len(dated) == 9
    steps = [c for kind, _, body in blocks(_walk()) if kind == "sh" for c in commands(body)]
    order = [steps.index(c) for c in dated]  # ValueError: a dated command the walk lacks
    assert order == sorted(order)  # and in the README's order


@pytest.mark.slow
def test_the_readme_metering_walk_runs_in_order(tmp_path: Path) -> None:
    log: list[tuple[list[str], str]] = []
    assert run_page(_walk(), tmp_path, log=log) == 11
    assert (tmp_path / "out" / "october" / "meters.parquet").exists()
    assert (tmp_path / "out" / "h01-october.csv").read_text().count("\n") == 5960 + 1
    for argv, printed in log[-3:]:
        print(f"$ openmeg {' '.join(argv)}\n{printed}")  # shown with -s
    run, accounts, revenue, settlement = (printed for _, printed in log[-4:])
    assert "VEE: 1 local day validated (2026-06-01; Europe/Rome)" in run
    assert "bought " in accounts and "sold " in accounts

    # revenue, hour by hour: the local day's 24 hours, adding up to the devices' total
    hours = re.findall(r"^2026-06-01 (\d\d):00 .* (-?\d+\.\d\d)$", revenue, re.M)
    assert [h for h, _ in hours] == [f"{h:02d}" for h in range(24)]
    total = float(re.search(r"^all devices: (-?\d+\.\d\d)", revenue, re.M).group(1))  # type: ignore[union-attr]
    assert sum(float(v) for _, v in hours) == pytest.approx(total, abs=0.005 * 24)

    # the settlement: every prosumer's local day settled once, on the validated series
    assert "not settled yet" not in settlement
    rows = {
        c: (float(lo), float(ut), int(rev)) for c, lo, ut, _, rev in SETTLED.findall(settlement)
    }
    site = load_site("demo")
    meters = {m.customer: m.id for m in site.meters if m.parent is None}
    assert sorted(rows) == sorted(meters)
    assert {rev for _, _, rev in rows.values()} == {1}
    assert sum(lo for lo, _, _ in rows.values()) == pytest.approx(0, abs=0.001 * len(rows))
    with closing(Store(sqlite_url(tmp_path / "openmeg-demo.db"))) as db:
        start, end = DAY.tz_convert("UTC"), (DAY + pd.Timedelta(days=1)).tz_convert("UTC")
        raw = MeterReadings(db).long_frame(["m-h01"], start, end)
        assert raw.groupby("channel").size().to_dict() == {"export": 96, "import": 96}
        v = ValidatedReadings(db, site.site.id)
        names = sorted(meters)
        imp, _ = v.arrays([meters[c] for c in names], "import", start, end)
        exp, _ = v.arrays([meters[c] for c in names], "export", start, end)
    assert not np.isnan(imp).any() and not np.isnan(exp).any()
    position = imp.sum(axis=1) - exp.sum(axis=1)
    settled = np.array([rows[c][0] + rows[c][1] for c in names])
    np.testing.assert_allclose(settled, position, atol=0.002)
