"""Device addresses in the site file: validated, unique, given to both programs; the default
controllers; the JSON Schema of a site file and the document generated from it."""

import copy
import importlib.util
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from openmeg.core.addresses import DeviceAddress, ModbusAddress
from openmeg.core.errors import SiteFileError
from openmeg.core.site import SITES_DIR, Site, is_shipped_demo, load_site, site_schema
from openmeg.core.wiring import on_wire, site_addresses, unaddressed

DEMO = SITES_DIR / "demo.yaml"
SMALL_LAN = SITES_DIR / "examples" / "small-lan.yaml"
ROOT = Path(__file__).resolve().parents[2]
ON_WIRE = ("pv", "wind", "chp", "fuel_cell", "battery", "heat_storage", "sensor")


def _demo() -> dict[str, Any]:
    return yaml.safe_load(DEMO.read_text())


def _problems(tmp_path: Path, data: object) -> list[str]:
    path = tmp_path / "site.yaml"
    path.write_text(yaml.safe_dump(data))
    with pytest.raises(SiteFileError) as info:
        load_site(path)
    return [str(p).removeprefix(f"{path}: ") for p in info.value.problems]


def _index(data: dict[str, Any], device: str) -> int:
    return next(i for i, d in enumerate(data["devices"]) if d["id"] == device)


def test_the_demo_gives_every_device_on_the_wire_its_address_as_the_field_lays_it_out() -> None:
    site = load_site("demo")
    assert unaddressed(site) == []
    addresses = site_addresses(site)
    assert addresses[0] == DeviceAddress(
        id="pcc", host="127.0.0.1", port=15020, unit=1, models=(1, 64900)
    )
    wired = [d.id for d in site.devices if d.kind in ON_WIRE]
    meters = [m.id for m in site.meters]
    switches = ["cb-r", "sw-r3", "sw-r5", "sw-r9", "tie-r18-c20"]
    assert [a.id for a in addresses] == ["pcc", *wired, *meters, *switches]
    assert [a.port for a in addresses[: 1 + len(wired)]] == list(range(15020, 15039))
    assert [a.port for a in addresses[-5:]] == list(range(15040, 15045))
    assert {(a.port, a.unit) for a in addresses if a.id in meters} == {
        (15039, u) for u in range(1, 23)
    }
    assert {a.host for a in addresses} == {"127.0.0.1"}


def test_the_demo_expects_the_models_the_simulated_field_serves() -> None:
    from openmeg.sim.wire import wire_plan

    site = load_site("demo")
    served = {w.id: w.models for w in wire_plan(site)}
    assert {a.id: a.models for a in site_addresses(site)} == served


@pytest.mark.parametrize(
    ("change", "field", "message"),
    [
        ({"port": 70000}, "port", "Input should be less than or equal to 65535"),
        ({"port": 0}, "port", "Input should be greater than or equal to 1"),
        ({"unit": 248}, "unit", "Input should be less than or equal to 247"),
        ({"unit": -1}, "unit", "Input should be greater than or equal to 0"),
        (
            {"host": "not a host"},
            "host",
            "Value error, host 'not a host' is neither an IP address nor a host name: "
            "give e.g. 192.168.1.21 or inverter-1.local",
        ),
        (
            {"host": "300.1.1.1"},
            "host",
            "Value error, host '300.1.1.1' is neither an IP address nor a host name: "
            "give e.g. 192.168.1.21 or inverter-1.local",
        ),
        ({"models": [1, 103, 1]}, "models", "Value error, list each SunSpec model once"),
        ({"models": [0]}, "models", "Value error, SunSpec model ids lie in 1..65534 (got 0)"),
        ({"slave": 3}, "slave", "Extra inputs are not permitted"),
    ],
)
def test_a_bad_address_names_its_field_and_what_is_accepted(
    tmp_path: Path, change: dict[str, object], field: str, message: str
) -> None:
    data = _demo()
    i = _index(data, "pv-h01")
    data["devices"][i]["address"].update(change)
    assert _problems(tmp_path, data) == [f"devices[{i}](pv).address.{field}: {message}"]


@pytest.mark.parametrize("host", ["inverter-1.local", "fe80::1", "10.0.0.7", "gateway"])
def test_names_and_ip_addresses_are_hosts(host: str) -> None:
    assert ModbusAddress(host=host).host == host


def test_port_and_unit_default_to_modbus_502_and_unit_1() -> None:
    assert str(ModbusAddress(host="192.168.1.21")) == "192.168.1.21:502:1"


def test_two_devices_on_one_address(tmp_path: Path) -> None:
    data = _demo()
    i = _index(data, "pv-h01")
    data["devices"][i]["address"]["port"] = 15020
    data["meters"][1]["address"]["unit"] = 1
    assert _problems(tmp_path, data) == [
        f"devices[{i}](pv).address: 127.0.0.1:15020:1 is also the address of pcc "
        "(utility.transfer_switch_address): give each device its own host:port:unit",
        "meters[1].address: 127.0.0.1:15039:1 is also the address of m-h01 (meters[0].address): "
        "give each device its own host:port:unit",
    ]


def test_a_device_off_the_wire_takes_no_address(tmp_path: Path) -> None:
    data = _demo()
    data["devices"][0]["address"] = {"host": "127.0.0.1", "port": 16000}
    assert _problems(tmp_path, data) == [
        "devices[0](load).address: this kind of device is not on the wire and takes no address; "
        "these do: pv, wind, chp, fuel_cell, battery, heat_storage, sensor, meters and "
        "utility.transfer_switch_address"
    ]


def test_site_addresses_gives_only_the_devices_with_one() -> None:
    site = load_site("demo")
    pv = site.device("pv-h01").model_copy(update={"address": None})
    bare = site.model_copy(
        update={"devices": tuple(pv if d.id == "pv-h01" else d for d in site.devices)}
    )
    assert unaddressed(bare) == ["pv-h01"]
    assert "pv-h01" not in {a.id for a in site_addresses(bare)}
    assert len(site_addresses(bare)) == len(on_wire(bare)) - 1 == 45


def test_shipped_demos_are_the_sites_loaded_by_name(tmp_path: Path) -> None:
    assert is_shipped_demo(DEMO)
    assert not is_shipped_demo(SMALL_LAN)
    assert not is_shipped_demo(tmp_path / "demo.yaml")


# controllers


def _without_controllers(data: dict[str, Any]) -> dict[str, Any]:
    data = copy.deepcopy(data)
    del data["controllers"]
    return data


def test_a_site_without_controllers_runs_the_defaults_for_its_devices() -> None:
    site = Site.model_validate(_without_controllers(_demo()))
    assert [(c.kind, c.priority, c.enabled) for c in site.controllers] == [
        ("heat_led_chp", 10, True),
        ("self_consumption", 20, True),
    ]
    no_chp = _without_controllers(_demo())
    gone = {d["id"] for d in no_chp["devices"] if d["kind"] in ("chp", "sensor")}
    no_chp["devices"] = [d for d in no_chp["devices"] if d["id"] not in gone]
    for device_id in gone:
        del no_chp["scenario"]["devices"][device_id]
    no_chp["meters"][-1]["devices"].remove("chp1")
    assert [c.kind for c in Site.model_validate(no_chp).controllers] == ["self_consumption"]


def test_an_empty_controllers_section_runs_none() -> None:
    data = _demo()
    data["controllers"] = []
    assert Site.model_validate(data).controllers == ()


def _openmeg(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "openmeg", *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_site_check_says_which_default_controllers_run(tmp_path: Path) -> None:
    path = tmp_path / "site.yaml"
    path.write_text(yaml.safe_dump(_without_controllers(_demo())))
    done = _openmeg("site", "check", str(path))
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [
        f"{path}: ok: site 'demo', 45 devices, 22 meters, 21 customers",
        f"{path}: no controllers section: the defaults run: heat_led_chp (priority 10), "
        "self_consumption (priority 20)",
    ]


# the small real site of docs/site-file.md


def test_the_small_lan_example_passes_site_check() -> None:
    done = _openmeg("site", "check", str(SMALL_LAN))
    assert done.returncode == 0, done.stderr
    assert done.stdout == f"{SMALL_LAN}: ok: site 'workshop', 5 devices, 1 meters, 1 customers\n"
    site = load_site(SMALL_LAN)
    assert unaddressed(site) == []
    assert [str(a) for a in site_addresses(site)] == [
        "192.168.10.10:502:1",
        "192.168.10.21:502:1",
        "192.168.10.22:502:1",
        "192.168.10.23:502:1",
        "192.168.10.30:502:1",
        "192.168.10.40:502:1",
    ]
    assert [d.kind for d in site.devices].count("pv") == 3
    assert [c.kind for c in site.controllers] == ["self_consumption"]


# the schema and the document


def _validator() -> Any:
    """A JSON Schema validator for the site file's schema: jsonschema, else jsonschema-rs."""
    schema = site_schema()
    try:
        import jsonschema

        cls = jsonschema.validators.validator_for(schema)
        cls.check_schema(schema)
        return lambda data: [e.message for e in cls(schema).iter_errors(data)]
    except ImportError:
        rs = pytest.importorskip("jsonschema_rs")
        v = rs.validator_for(schema)
        return lambda data: [e.message for e in v.iter_errors(data)]


def _as_json(path: Path) -> Any:
    return json.loads(json.dumps(yaml.safe_load(path.read_text()), default=str))


def test_the_demo_and_the_example_validate_against_the_schema() -> None:
    errors = _validator()
    assert errors(_as_json(DEMO)) == []
    assert errors(_as_json(SMALL_LAN)) == []


@pytest.mark.parametrize(
    "change", [{"port": 70000}, {"unit": 300}, {"host": "not a host"}, {"models": [1, 1]}]
)
def test_a_file_with_a_bad_address_does_not_validate(change: dict[str, object]) -> None:
    data = _as_json(DEMO)
    data["devices"][_index(data, "pv-h01")]["address"].update(change)
    assert _validator()(data) != []


def test_site_schema_prints_the_schema_with_every_field_described() -> None:
    done = _openmeg("site", "schema")
    assert done.returncode == 0, done.stderr
    printed = json.loads(done.stdout)
    assert printed == site_schema()
    models = {"Site": printed, **printed["$defs"]}
    undescribed = [
        f"{name}.{field}"
        for name, model in models.items()
        for field, prop in model.get("properties", {}).items()
        if not prop.get("description")
    ]
    assert undescribed == []
    address = printed["$defs"]["ModbusAddress"]["properties"]
    assert (address["port"]["minimum"], address["port"]["maximum"]) == (1, 65535)
    assert (address["unit"]["minimum"], address["unit"]["maximum"]) == (0, 247)


def test_docs_site_file_md_matches_the_schema_and_the_example() -> None:
    spec = importlib.util.spec_from_file_location(
        "site_file_doc", ROOT / "scripts/site_file_doc.py"
    )
    assert spec is not None and spec.loader is not None
    doc = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(doc)
    committed = (ROOT / "docs" / "site-file.md").read_text()
    assert doc.render(committed) == committed, "run python scripts/site_file_doc.py"
    assert SMALL_LAN.read_text().rstrip() in committed
    assert "openmeg run --site mysite.yaml --field site" in committed


def test_devices_add_takes_addresses_by_the_same_rules() -> None:
    from openmeg.core.messages import parse_device_address

    assert parse_device_address("fe80::1:502:247") == ("fe80::1", 502, 247)
    with pytest.raises(ValueError) as info:
        parse_device_address("10.0.0.7:502:248")
    assert str(info.value) == "device address '10.0.0.7:502:248': port 1..65535 and unit id 0..247"
    with pytest.raises(ValueError) as info:
        parse_device_address("not a host:502:1")
    assert str(info.value) == (
        "host 'not a host' is neither an IP address nor a host name: "
        "give e.g. 192.168.1.21 or inverter-1.local"
    )
