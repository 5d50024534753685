"""Site files: the demo loads; each kind of bad file gives a clear error naming file and field."""

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from openmeg.core.errors import SiteFileError
from openmeg.core.site import SITES_DIR, load_site

DEMO = SITES_DIR / "demo.yaml"


def _demo() -> dict:  # type: ignore[type-arg]
    return yaml.safe_load(DEMO.read_text())


def _write(tmp_path: Path, data: object) -> Path:
    p = tmp_path / "site.yaml"
    p.write_text(yaml.safe_dump(data) if not isinstance(data, str) else data)
    return p


def _problems(path: Path) -> list[str]:
    with pytest.raises(SiteFileError) as info:
        load_site(path)
    return [str(p) for p in info.value.problems]


def test_demo_site_has_what_the_community_meg_needs() -> None:
    site = load_site("demo")
    kinds = [d.kind for d in site.devices]
    rooftop = [d for d in site.devices_of("pv") if d.owner.startswith("h")]
    assert len(rooftop) >= 6
    assert kinds.count("wind") == 1 and kinds.count("chp") == 1 and kinds.count("fuel_cell") == 1
    assert kinds.count("heat_storage") == 1 and kinds.count("heat_load") >= 1
    batteries = site.devices_of("battery")
    assert [b.owner == "community" for b in batteries].count(True) == 1
    assert [b.owner.startswith("h") for b in batteries].count(True) == 2
    assert kinds.count("ev_charger") == 2 and kinds.count("shiftable_load") >= 1
    assert any(d.kind == "load" and d.sheddable for d in site.devices)
    metered = {m.customer for m in site.meters} - {"community"}
    assert len(metered) >= 15
    [bldg] = site.buildings
    owners = [c for c in site.customers if c.building == bldg.id]
    assert len(owners) >= 4 and sum(c.share or 0 for c in owners) == pytest.approx(1.0)
    assert all(any(m.customer == o.id for m in site.meters) for o in owners)


def test_unknown_device_kind(tmp_path: Path) -> None:
    data = _demo()
    data["devices"][0]["kind"] = "flux_capacitor"
    [msg] = _problems(_write(tmp_path, data))
    assert msg.startswith(
        f"{tmp_path / 'site.yaml'}: devices[0]: unknown device kind 'flux_capacitor'"
    )
    assert "accepted: pv, wind, chp" in msg


def test_negative_capacity(tmp_path: Path) -> None:
    data = _demo()
    i = next(i for i, d in enumerate(data["devices"]) if d["id"] == "bess-community")
    data["devices"][i]["capacity_kwh"] = -400
    [msg] = _problems(_write(tmp_path, data))
    assert f"devices[{i}](battery).capacity_kwh: Input should be greater than 0" in msg


@pytest.mark.parametrize("reserve", [0.05, 0.96])
def test_outage_reserve_outside_the_soc_window(tmp_path: Path, reserve: float) -> None:
    data = _demo()
    i = next(i for i, d in enumerate(data["devices"]) if d["id"] == "bess-community")
    data["devices"][i]["outage_reserve_soc"] = reserve
    [msg] = _problems(_write(tmp_path, data))
    assert f"devices[{i}](battery): Value error, outage_reserve_soc {reserve:g} must lie " in msg
    assert "between soc_min 0.1 and soc_max 0.95" in msg


def test_outage_reserve_defaults_to_soc_min() -> None:
    site = load_site("demo")
    by_id = {b.id: b for b in site.devices_of("battery")}
    assert by_id["bess-community"].reserve_soc == 0.3
    assert by_id["bess-h01"].outage_reserve_soc is None and by_id["bess-h01"].reserve_soc == 0.1


def test_bus_not_in_network(tmp_path: Path) -> None:
    data = _demo()
    data["devices"][2]["bus"] = "Bus Z9"
    [msg] = _problems(_write(tmp_path, data))
    assert "devices[2](battery).bus: bus 'Bus Z9' is not in the network" in msg


def test_duplicate_ids(tmp_path: Path) -> None:
    data = _demo()
    data["devices"][1]["id"] = data["devices"][0]["id"]
    msgs = _problems(_write(tmp_path, data))
    assert any("id 'load-h01' is used 2 times; ids must be unique" in m for m in msgs)


def test_yaml_syntax_error(tmp_path: Path) -> None:
    [msg] = _problems(_write(tmp_path, "site:\n  id: demo\n   name: [broken\n"))
    assert "line 3" in msg and "YAML syntax error" in msg


def test_several_problems_reported_at_once(tmp_path: Path) -> None:
    data = _demo()
    data["devices"][0]["bus"] = "nowhere"
    owner = next(i for i, c in enumerate(data["customers"]) if c["id"] == "o1")
    data["customers"][owner]["share"] = 0.8
    msgs = _problems(_write(tmp_path, data))
    assert len(msgs) == 2
    assert any("owner shares add up to 1.6; they must add up to 1" in m for m in msgs)


@pytest.mark.parametrize("edit", ["kind", "yaml"])
def test_cli_exit_code_two_and_one_line_per_problem(tmp_path: Path, edit: str) -> None:
    data = _demo()
    if edit == "kind":
        data["devices"][0]["kind"] = "flux_capacitor"
        data["devices"][1]["annual_kwh"] = -1
        path = _write(tmp_path, data)
    else:
        path = _write(tmp_path, "devices: [\n")
    before = sorted(tmp_path.iterdir())
    run = subprocess.run(
        [sys.executable, "-m", "openmeg", "site", "check", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert run.returncode == 2
    lines = run.stderr.strip().splitlines()
    assert len(lines) == (2 if edit == "kind" else 1)
    assert all(line.startswith(f"error: {path}: ") for line in lines)
    assert sorted(tmp_path.iterdir()) == before


def test_cli_accepts_the_demo() -> None:
    run = subprocess.run(
        [sys.executable, "-m", "openmeg", "site", "check", str(DEMO)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert run.returncode == 0, run.stderr
    assert "45 devices" in run.stdout


def test_unknown_turbine_type(tmp_path: Path) -> None:
    data = _demo()
    i = next(i for i, d in enumerate(data["devices"]) if d["kind"] == "wind")
    data["devices"][i]["turbine_type"] = "X-99/9000"
    [msg] = _problems(_write(tmp_path, data))
    assert (
        f"devices[{i}](wind).turbine_type: turbine type 'X-99/9000' is not in windpowerlib" in msg
    )


def test_the_network_outline_is_cached_and_a_broken_cache_is_rebuilt(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import json

    from openmeg.core.network import network_outline

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    outline = network_outline("cigre_lv", None)
    assert "Bus R11" in outline.buses and len(outline.buses) == 44
    [cached] = (tmp_path / "openmeg" / "networks").glob("cigre_lv-pandapower-*.json")
    raw = json.loads(cached.read_text())
    raw["buses"].remove("Bus R11")
    cached.write_text(json.dumps(raw))
    assert "Bus R11" not in network_outline("cigre_lv", None).buses  # read from the cache
    cached.write_text("{not json")
    assert "Bus R11" in network_outline("cigre_lv", None).buses  # rebuilt
    assert json.loads(cached.read_text())["buses"] == sorted(outline.buses)
