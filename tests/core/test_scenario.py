"""The scenario section: the simulated plant's own description, which only the simulator reads."""

import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml

from openmeg.app import default_controllers, setpoint_limits
from openmeg.core.errors import SiteFileError
from openmeg.core.scenario import PHYSICS_FIELDS
from openmeg.core.scenario_file import simulated_scenario, with_scenario_file
from openmeg.core.site import (
    SITES_DIR,
    load_site,
    load_site_with_notes,
    network_of,
    site_schema,
)
from openmeg.core.wiring import site_addresses
from openmeg.sim.plant import build_plant

DEMO = SITES_DIR / "demo.yaml"


def _demo() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load(DEMO.read_text())
    return data


def _write(tmp_path: Path, data: object, name: str = "site.yaml") -> Path:
    path = tmp_path / name
    path.write_text(yaml.safe_dump(data))
    return path


def _old_layout() -> dict[str, Any]:
    """The demo as site files were written before the scenario section."""
    data = _demo()
    scenario = data.pop("scenario")
    data["weather_tmy3"] = scenario["weather"]  # its older name, at the top level
    data["simulation"] = scenario["simulation"]
    data["utility"]["outages"] = scenario["outages"]
    for device in data["devices"]:
        device.update(scenario["devices"].get(device["id"], {}))
    return data


def _problems(path: Path) -> list[str]:
    with pytest.raises(SiteFileError) as info:
        load_site(path)
    return [str(p) for p in info.value.problems]


def test_the_platform_reads_the_demo_without_its_scenario(tmp_path: Path) -> None:
    data = _demo()
    del data["scenario"]
    bare = load_site(_write(tmp_path, data))
    demo = load_site("demo")
    assert bare.scenario is None and demo.scenario is not None
    assert default_controllers(bare) == default_controllers(demo)
    assert setpoint_limits(bare) == setpoint_limits(demo)
    assert site_addresses(bare) == site_addresses(demo)
    assert bare.model_copy(update={"scenario": demo.scenario}) == demo


def test_the_device_entries_hold_no_physics() -> None:
    data = _demo()
    for device in data["devices"]:
        assert not set(device) & set(PHYSICS_FIELDS[device["kind"]]), device["id"]
    assert not {"weather_tmy3", "simulation"} & set(data)
    assert "outages" not in data["utility"]


@pytest.mark.parametrize("command", ["simulate", "sim serve"])
def test_the_simulator_without_a_scenario_exits_naming_it(tmp_path: Path, command: str) -> None:
    data = _demo()
    del data["scenario"]
    path = _write(tmp_path, data)
    run = subprocess.run(
        [sys.executable, "-m", "openmeg", *command.split(), "--site", str(path)]
        + (["--days", "0.01", "--out", str(tmp_path / "out")] if command == "simulate" else []),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 2, run.stderr
    assert f"error: {path}: scenario: the simulated field needs a scenario section" in run.stderr
    assert not (tmp_path / "out").exists()


def test_a_device_without_its_physics_is_named(tmp_path: Path) -> None:
    data = _demo()
    del data["scenario"]["devices"]["pv-h01"]
    del data["scenario"]["devices"]["bess-h01"]  # a battery's physics all have defaults
    site = load_site(_write(tmp_path, data))
    with pytest.raises(SiteFileError) as info:
        build_plant(site, network_of(site), datetime(2026, 6, 1, tzinfo=UTC), 10, 60.0)
    assert [str(p) for p in info.value.problems] == [
        "site 'demo': scenario.devices.pv-h01: no physics for the pv 'pv-h01': give dc_kwp"
    ]


def test_an_old_site_file_loads_into_the_same_site_with_notes(tmp_path: Path) -> None:
    path = _write(tmp_path, _old_layout())
    site, notes = load_site_with_notes(path)
    assert site == load_site("demo")
    assert notes[:3] == [
        "weather_tmy3: moved to scenario.weather_tmy3",
        "simulation: moved to scenario.simulation",
        "utility.outages: moved to scenario.outages",
    ]
    assert "devices[1](pv).dc_kwp, tilt_deg, azimuth_deg: moved to scenario.devices.pv-h01" in notes
    assert load_site_with_notes("demo")[1] == []


def test_site_check_notes_the_old_places_on_stderr(tmp_path: Path) -> None:
    path = _write(tmp_path, _old_layout())
    run = subprocess.run(
        [sys.executable, "-m", "openmeg", "site", "check", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert run.returncode == 0, run.stderr
    assert f"{path}: ok: site 'demo'" in run.stdout
    lines = run.stderr.strip().splitlines()
    assert lines[0] == (
        f"deprecated: {path}: weather_tmy3: moved to scenario.weather_tmy3 (the simulated "
        "plant's description belongs in scenario; see docs/site-file.md)"
    )
    assert all(line.startswith(f"deprecated: {path}: ") for line in lines)


def test_a_field_in_both_places_is_an_error(tmp_path: Path) -> None:
    data = _demo()
    data["devices"][1]["dc_kwp"] = 9.0
    [msg] = _problems(_write(tmp_path, data))
    assert msg.endswith(
        "scenario: devices[1].dc_kwp is also given in scenario.devices.pv-h01: keep scenario's"
    )


def test_scenario_entries_are_checked_against_the_devices(tmp_path: Path) -> None:
    data = _demo()
    data["scenario"]["devices"]["pv-nowhere"] = {"dc_kwp": 1.0}
    data["scenario"]["devices"]["bess-community"]["soc_initial"] = 0.99
    data["scenario"]["devices"]["pv-h03"]["tilt_deg"] = 95
    data["scenario"]["devices"]["pv-h05"]["kind"] = "wind"
    msgs = _problems(_write(tmp_path, data))
    assert any(
        m.endswith("scenario.devices.pv-nowhere: 'pv-nowhere' is not a device id") for m in msgs
    )
    assert any(
        "scenario.devices.pv-h03(pv).tilt_deg: Input should be less than or equal to 90" in m
        for m in msgs
    )
    assert any(
        "scenario.devices.pv-h05(wind).dc_kwp: Extra inputs are not permitted" in m for m in msgs
    )
    data["scenario"]["devices"]["pv-h03"]["tilt_deg"] = 30
    del data["scenario"]["devices"]["pv-h05"]["kind"]
    msgs = _problems(_write(tmp_path, data))
    assert msgs[0].endswith("scenario.devices.pv-nowhere: 'pv-nowhere' is not a device id")
    assert msgs[1].endswith(
        "scenario.devices.bess-community.soc_initial: soc_initial 0.99 must lie between the "
        "battery's soc_min 0.1 and soc_max 0.95"
    )
    assert len(msgs) == 2


def test_the_schema_describes_the_scenario_with_units() -> None:
    schema = site_schema()
    assert "scenario" in schema["properties"]
    defs = schema["$defs"]
    assert "[kWp]" in defs["PVPhysics"]["properties"]["dc_kwp"]["description"]
    assert "[kW/min]" in defs["ChpPhysics"]["properties"]["ramp_kw_per_min"]["description"]
    assert "[min]" in defs["Simulation"]["properties"]["powerflow_interval_min"]["description"]
    assert "dc_kwp" not in defs["PV"]["properties"]
    assert {"inverter_kw", "address"} <= set(defs["PV"]["properties"])


def test_a_scenario_file_takes_the_place_of_the_section(tmp_path: Path) -> None:
    data = _demo()
    scenario = data.pop("scenario")
    scenario["outages"] = scenario["outages"][:1]
    bare = load_site(_write(tmp_path, data))
    played = with_scenario_file(bare, _write(tmp_path, scenario, "scenario.yaml"))
    demo = load_site("demo")
    assert played.scenario is not None and demo.scenario is not None
    assert played.scenario.outages == demo.scenario.outages[:1]
    assert played.scenario.devices == demo.scenario.devices
    assert played.model_copy(update={"scenario": demo.scenario}) == demo
    assert simulated_scenario(played) is played.scenario


def test_a_bad_scenario_file_names_its_problems(tmp_path: Path) -> None:
    path = tmp_path / "scenario.yaml"
    path.write_text("{devices: {pv-x: {dc_kwp: 1}, pv-h01: {dc_kwp: -1}}}\n")
    with pytest.raises(SiteFileError) as info:
        with_scenario_file(load_site("demo"), path)
    assert [str(p) for p in info.value.problems] == [
        f"{path}: devices.pv-x: 'pv-x' is not a device id of the site",
        f"{path}: weather: Field required",
        f"{path}: devices.pv-h01(pv).dc_kwp: Input should be greater than 0",
    ]
    path.write_text("[1, 2]\n")
    with pytest.raises(SiteFileError) as info:
        with_scenario_file(load_site("demo"), path)
    [problem] = info.value.problems
    assert problem.field == "(top level)" and "a scenario file is a YAML mapping" in problem.message


def test_simulate_plays_a_scenario_file(tmp_path: Path) -> None:
    data = _demo()
    scenario = data.pop("scenario")
    site = _write(tmp_path, data)
    played = _write(tmp_path, scenario, "scenario.yaml")
    args = ["--site", str(site), "--scenario", str(played), "--days", "0.05"]
    run = subprocess.run(
        [sys.executable, "-m", "openmeg", "simulate", *args, "--out", str(tmp_path / "out")],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 0, run.stderr
    assert (tmp_path / "out" / "summary.json").exists()
