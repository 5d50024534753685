"""GET /api/v1/network and /network/state on a live MEG operating the simulated demo field: the
site file's network as the diagram draws it, per role, and its live state."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest

from openmeg.core.site import load_site
from tests.api.harness import Harness

SITE = load_site("demo")


@pytest.fixture(scope="module")
def h(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Harness]:
    with Harness(tmp_path_factory.mktemp("network")) as harness:
        yield harness


def get(h: Harness, role: str, path: str) -> Any:
    with h.client(role) as c:
        r = c.get(path)
    assert r.status_code == 200, r.text
    return r.json()


def test_the_operator_gets_the_whole_network_of_the_site_file(h: Harness) -> None:
    net = get(h, "operator", "/api/v1/network")
    assert len(net["buses"]) == 44  # CIGRE LV: the 20 kV bus, 3 MV/LV stations, 40 LV buses
    assert {ln["name"] for ln in net["lines"] if ln["kind"] == "tie"} == {"tie tie-r18-c20"}
    assert len([ln for ln in net["lines"] if ln["kind"] == "line"]) == 37
    assert {t["name"] for t in net["transformers"]} == {"Trafo R0-R1", "Trafo I0-I1", "Trafo C0-C1"}
    assert net["pcc_bus"] == SITE.utility.pcc_bus and net["transfer_switch"] == "ats"
    switches = {s["id"]: s for s in net["switches"]}
    assert set(switches) == {"pcc", "cb-r", "sw-r3", "sw-r5", "sw-r9", "tie-r18-c20"}
    assert all(s["commandable"] for s in switches.values())
    assert switches["cb-r"]["kind"] == "breaker" and switches["cb-r"]["line"] == "Line R1-R2"
    assert not switches["tie-r18-c20"]["normally_closed"]
    devices = {d["id"]: d for d in net["devices"]}
    assert set(devices) == {d.id for d in SITE.devices}
    for d in SITE.devices:
        assert devices[d.id]["bus"] == d.bus and devices[d.id]["kind"] == d.kind
        if d.name:
            assert devices[d.id]["name"] == d.name
    assert devices["pv-h01"]["name"] == "PV Home 01"  # no name in the site file: derived
    assert devices["load-h01"]["name"] == "Home 01"
    assert devices["bess-community"]["grid_forming"]
    meters = {m["id"]: m for m in net["meters"]}
    assert set(meters) == {m.id for m in SITE.meters}
    assert meters["m-o1"]["parent"] == "m-bldg1" and meters["m-h01"]["bus"] == "Bus R11"
    # every device is listed once in the panel of its bus
    rows = [(p["bus"], r["id"]) for p in net["panels"] for r in p["rows"] if r["kind"] == "device"]
    assert sorted(r for _, r in rows) == sorted(devices)
    assert all(devices[d]["bus"] == bus for bus, d in rows)


def test_hostile_requests_are_refused(h: Harness) -> None:
    with h.client("operator") as c:
        for path in (
            "/api/v1/network?bus=Bus%200",
            "/api/v1/network/state?devices=../../etc/passwd",
            "/api/v1/network/state?%00=1",
        ):
            r = c.get(path)
            assert r.status_code == 422 and "no query parameters" in r.text, (path, r.text)
    with h.client() as anonymous:
        assert anonymous.get("/api/v1/network").status_code == 401
        assert anonymous.get("/api/v1/network/state").status_code == 401


def test_the_state_is_consistent_with_its_own_values(h: Harness) -> None:
    st = get(h, "operator", "/api/v1/network/state")
    assert st["mode"] == "grid" and st["grid_connected"] and st["islands"] == []
    assert len(st["energised"]) == 44 and not st["meshed"]
    assert st["switches"] == {
        "pcc": True,
        "cb-r": True,
        "sw-r3": True,
        "sw-r5": True,
        "sw-r9": True,
        "tie-r18-c20": False,
    }
    flows, dev, met = st["flows_kw"], st["devices"], st["meters"]
    # the industrial feeder takes what the factory imports less what the CHP at I2 gives
    assert flows["Trafo I0-I1"] == pytest.approx(
        met["m-factory"]["import_kw"] - dev["chp1"]["p_kw"], abs=1e-9
    )
    assert flows["Line I1-I2"] == pytest.approx(flows["Trafo I0-I1"], abs=1e-9)
    # the end of the commercial feeder: C19 carries the shop's load, the open tie nothing
    assert flows["Line C8-C19"] == pytest.approx(met["m-shop"]["import_kw"], abs=1e-9)
    assert flows["tie tie-r18-c20"] == 0.0
    # a load alone behind its meter: what the meter measures less its wired devices
    assert dev["load-h01"]["p_kw"] == pytest.approx(
        -met["m-h01"]["import_kw"] - dev["pv-h01"]["p_kw"] - dev["bess-h01"]["p_kw"], abs=1e-9
    )
    # two loads behind one meter are told together
    assert dev["load-h02"]["p_kw"] is None
    assert met["m-h02"]["loads_kw"] == pytest.approx(-met["m-h02"]["import_kw"], abs=1e-9)


def test_an_open_sectionalizer_darkens_its_feeder_end(h: Harness) -> None:
    with h.client("operator") as c:
        r = c.post(
            "/api/v1/commands", json={"device": "sw-r5", "name": "switch_command", "value": 1}
        )
        assert r.status_code == 200, r.text
        try:
            deadline = time.monotonic() + 10
            while True:
                st = c.get("/api/v1/network/state").json()
                if not st["switches"]["sw-r5"] or time.monotonic() > deadline:
                    break
                time.sleep(0.1)
            assert st["switches"]["sw-r5"] is False
            dark = {b["name"] for b in get(h, "operator", "/api/v1/network")["buses"]}
            dark -= set(st["energised"])
            assert dark == {f"Bus R{i}" for i in (6, 7, 8, 9, 10, 16, 17, 18)}
            assert st["flows_kw"]["Line R5-R6"] == 0.0
            assert st["devices"]["pv-h10"]["energised"] is False
        finally:
            r = c.post(
                "/api/v1/commands", json={"device": "sw-r5", "name": "switch_command", "value": 2}
            )
            assert r.status_code == 200, r.text
        r = c.post(
            "/api/v1/commands", json={"device": "sw-r77", "name": "switch_command", "value": 1}
        )
        assert r.status_code == 422 and "no device" in r.text


def test_a_prosumer_gets_their_premises_only(h: Harness) -> None:
    net = get(h, "prosumer", "/api/v1/network")
    assert {d["id"] for d in net["devices"]} == {"load-h01", "pv-h01", "bess-h01"}
    assert [m["id"] for m in net["meters"]] == ["m-h01"]
    assert [b["name"] for b in net["buses"]] == ["Bus R11"]
    assert net["lines"] == net["switches"] == net["transformers"] == net["couplers"] == []
    st = get(h, "prosumer", "/api/v1/network/state")
    assert set(st["devices"]) == {"load-h01", "pv-h01", "bess-h01"}
    assert set(st["meters"]) == {"m-h01"}
    assert st["flows_kw"] == {} and st["switches"] == {} and st["energised"] == ["Bus R11"]


def test_the_service_provider_sees_no_meter_data(h: Harness) -> None:
    st = get(h, "service_provider", "/api/v1/network/state")
    assert st["meters"] == {}
    assert st["devices"]["load-h01"]["p_kw"] is None  # a load's power is its meter's
    assert st["devices"]["pv-h01"]["p_kw"] is not None  # a unit's own power is operating data
    assert "Line R1-R2" in st["flows_kw"]
