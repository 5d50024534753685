"""``openmeg run --field auto|sim|site``: which field the platform operates."""

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from openmeg.cli.field_choice import FieldSource, choose_field
from openmeg.core.site import SITES_DIR, load_site

DEMO = SITES_DIR / "demo.yaml"
SMALL_LAN = SITES_DIR / "examples" / "small-lan.yaml"


def _copy(tmp_path: Path, *, drop: tuple[str, ...] = ()) -> Path:
    data = yaml.safe_load(DEMO.read_text())
    for entry in data["devices"]:
        if entry["id"] in drop:
            del entry["address"]
    path = tmp_path / f"mysite{len(drop)}.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


@pytest.mark.parametrize(
    ("which", "wanted", "taken"),
    [
        ("demo", FieldSource.auto, FieldSource.sim),  # a shipped demo
        ("copy", FieldSource.auto, FieldSource.site),  # every address given, not shipped
        ("partial", FieldSource.auto, FieldSource.sim),  # pv-h01 has no address
        ("example", FieldSource.auto, FieldSource.site),
        ("copy", FieldSource.sim, FieldSource.sim),
        ("demo", FieldSource.site, FieldSource.site),
        ("partial", FieldSource.sim, FieldSource.sim),
    ],
)
def test_how_field_is_decided(
    tmp_path: Path, which: str, wanted: FieldSource, taken: FieldSource
) -> None:
    path = {
        "demo": DEMO,
        "example": SMALL_LAN,
        "copy": _copy(tmp_path),
        "partial": _copy(tmp_path, drop=("pv-h01",)),
    }[which]
    assert choose_field(load_site(path), path, wanted) is taken


def test_field_site_needs_every_address(tmp_path: Path) -> None:
    path = _copy(tmp_path, drop=("pv-h01", "pv-h03", "pv-h05", "pv-h07", "pv-h09", "pv-h10"))
    done = subprocess.run(
        [sys.executable, "-m", "openmeg", "run", "--site", str(path), "--field", "site"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 2
    assert " ".join(done.stderr.split()) == (
        f"error: --field site: {path} gives no address for pv-h01, pv-h03, pv-h05, pv-h07, "
        "pv-h09 and 1 more: add `address: {host, port, unit}` to each "
        "(utility.transfer_switch_address for pcc), or start the simulated field with --field sim"
    )
