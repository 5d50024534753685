"""The operation views' API over real HTTP on 127.0.0.1: islanding as an alarm and an event
(and resynchronisation clearing it), the event log by category with who and why, devices added
and lost, voltages per metered bus against EN 50160 (hand-checked), a meter day with its VEE
flags and versions, a month's issued bills, the simulator's controls; hostile input gets a
4xx with a clear message, never a 500."""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import httpx
import pandas as pd
import pytest

from openmeg.api.routes_views import (
    VoltagesOut,
    category_of,
    local_day,
    meter_buses,
    nominal_phase_v,
    voltages_of,
)
from openmeg.core.points import Quality
from openmeg.core.site import load_site
from openmeg.operation.scada import LiveValue
from openmeg.provider.billing import Bill, BillLine
from openmeg.provider.issued_bills import IssuedBills
from tests.api.harness import START, Harness, a_validated_meter_day

TZ = "Europe/Rome"
LV = 400 / math.sqrt(3)  # the CIGRE LV network's nominal phase voltage, 230.94 V
MV = 20_000 / math.sqrt(3)  # its 20 kV side (the PCC's bus)


@pytest.fixture(scope="module")
def h(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Harness]:
    with Harness(tmp_path_factory.mktemp("views")) as harness:
        yield harness


def _until(what: Callable[[], Any], timeout_s: float, why: str) -> Any:
    end = time.monotonic() + timeout_s
    while time.monotonic() < end:
        found = what()
        if found:
            return found
        time.sleep(0.05)
    pytest.fail(why)


def _events(op: httpx.Client, category: str | None = None) -> list[dict[str, Any]]:
    q = f"?category={category}" if category else ""
    r = op.get(f"/api/v1/views/events{q}")
    assert r.status_code == 200, r.text
    return list(r.json())


def test_islanding_is_an_alarm_and_an_event_until_resynchronised(h: Harness) -> None:
    with h.client("operator") as op:
        assert op.get("/api/v1/sim").json()["connected"] is True
        t0 = time.monotonic()
        r = op.post("/api/v1/sim/utility", json={"available": False})
        assert r.status_code == 200, r.text

        def island_alarm() -> list[dict[str, Any]]:
            return [a for a in op.get("/api/v1/alarms").json() if a["key"] == "pcc/island"]

        [alarm] = _until(island_alarm, 3.0, "no islanding alarm within 3 s")
        assert time.monotonic() - t0 < 3.0
        assert (alarm["severity"], alarm["active"]) == ("warning", True)
        assert alarm["text"] == "MEG islanded: the utility grid is down"
        mode = _events(op, "mode")[0]
        assert (mode["code"], mode["severity"], mode["source"]) == ("island", "warning", "pcc")
        assert mode["text"] == "MEG now in island mode: the utility grid is down"
        sim = _events(op, "simulation")[0]
        assert (sim["code"], sim["who"], sim["text"]) == (
            "utility_down",
            "op",
            "op: the simulated utility grid goes down",
        )
        # the stored events, newest first, ids descending
        ids = [e["id"] for e in _events(op)]
        assert ids == sorted(ids, reverse=True)

        assert op.post("/api/v1/sim/utility", json={"available": True}).status_code == 200
        _until(
            lambda: op.get("/api/v1/live").json()["mode"] == "grid",
            45.0,
            "the MEG did not resynchronise",
        )
        assert island_alarm() == []
        [cleared] = [
            a for a in op.get("/api/v1/alarms?active=false").json() if a["key"] == "pcc/island"
        ]
        assert cleared["active"] is False
        back = _events(op, "mode")[0]
        assert (back["code"], back["severity"]) == ("grid", "info")
        assert back["text"] == "MEG now in grid mode: resynchronised with the utility grid"
        alarms = [(e["kind"], e["code"]) for e in _events(op, "alarm")]
        assert alarms[:2] == [("alarm_clear", "island"), ("alarm", "island")]
    actions = [(r.actor, r.action, r.target) for r in h.api.services.audit.records(limit=1000)]
    assert ("op", "simulation", "utility_down") in actions
    assert ("op", "simulation", "utility_up") in actions


def test_a_command_event_has_who_and_why(h: Harness) -> None:
    with h.client("operator") as op:
        body = {"device": "bess-h01", "name": "p_set_kw", "value": 1.5}
        reason = "test the\nhome battery  before the storm"
        r = op.post("/api/v1/commands", json={**body, "reason": reason})
        assert r.status_code == 200, r.text
        e = _events(op, "command")[0]
        assert e["text"] == (
            "op set bess-h01/p_set_kw = 1.5: done; why: test the home battery before the storm"
        )
        assert (e["who"], e["why"], e["code"]) == (
            "op",
            "test the home battery before the storm",
            "accepted",
        )
        r = op.post("/api/v1/commands", json=body)  # no reason: none shown
        assert _events(op, "command")[0]["why"] is None
        r = op.post("/api/v1/commands", json={**body, "reason": "x" * 201})
        assert r.status_code == 422 and "200 characters" in r.text
    audit = h.api.services.audit.records(limit=1000)
    why = [x.detail.get("why") for x in audit if x.target == "bess-h01/p_set_kw"]
    assert "test the home battery before the storm" in why


def test_events_fall_in_their_categories() -> None:
    assert category_of("command", "accepted", "op set pcc/switch_command = 1.0: done") == "switch"
    assert category_of("flisr", "isolated", "isolated Line R6-R7") == "switch"
    assert category_of("command", "accepted", "op set bess-h01/p_set_kw = 1.0: done") == "command"
    assert category_of("alarm", "device_unreachable", "device unreachable: x") == "device"
    assert category_of("alarm_clear", "device_unreachable", "back") == "device"
    assert category_of("device", "added", "added as x") == "device"
    assert category_of("alarm", "island", "MEG islanded") == "alarm"
    assert category_of("alarm_ack", "island", "acknowledged by op") == "alarm"
    assert category_of("mode", "island", "MEG now in island mode") == "mode"
    assert category_of("meter_edit", "m-h01/import", "0.1 -> 0.2 kWh") == "other"


def test_devices_lost_and_back_and_added_are_in_the_event_log(h: Harness) -> None:
    from openmeg.core.messages import DeviceAdd, device_add_topic
    from tests.sunspec_device import BATTERY_700, SunSpecDevice

    h.call(h.field.servers.silence("pv-h05"))
    with h.client("operator") as op:
        lost = _until(
            lambda: [e for e in _events(op, "device") if e["kind"] == "alarm"],
            20.0,
            "no event of the device lost",
        )
        assert (lost[0]["source"], lost[0]["code"]) == ("pv-h05", "device_unreachable")
        h.call(h.field.servers.answer("pv-h05"))
        _until(
            lambda: [e for e in _events(op, "device") if e["kind"] == "alarm_clear"],
            20.0,
            "no event of the device back",
        )
    battery = h.call(
        SunSpecDevice([(1, {**BATTERY_700[0][1], "SN": "view-bat"}), *BATTERY_700[1:]]).start()
    )
    try:
        address = f"127.0.0.1:{battery.port}:1"
        with h.client("operator") as op:
            token = op.post("/api/v1/devices/authorisations", json={"address": address}).json()[
                "authorisation"
            ]
            h.call(
                h.bus.publish(
                    device_add_topic("demo"),
                    DeviceAdd(site="demo", address=address, ts=START, authorisation=token),
                )
            )
            added = _until(
                lambda: [e for e in _events(op, "device") if e["kind"] == "device"],
                10.0,
                "no event of the device added",
            )
        assert (added[0]["code"], added[0]["who"]) == ("added", "op")
        assert added[0]["text"] == f"the device at {address}, asked by op: added as view-bat"
    finally:
        h.call(battery.stop())


def test_voltages_of_the_metered_buses_against_en50160(h: Harness) -> None:
    buses = meter_buses(h.meg.site)
    assert buses["Bus R11"] == ["m-h01", "m-h02"]  # the meters at a bus: of its devices
    assert buses["Bus 0"] == ["m-community"]  # a meter without devices: at the PCC
    with h.client("operator") as op:
        v = _until(
            lambda: (
                (x := op.get("/api/v1/views/voltages").json())["buses"][0]["voltage_v"] is not None
                and x
            ),
            5.0,
            "no voltage measured",
        )
    assert [b["bus"] for b in v["buses"]] == sorted(buses)
    for b in v["buses"]:
        nominal = MV if b["bus"] == "Bus 0" else LV
        assert b["nominal_v"] == pytest.approx(nominal, abs=0.001)
        assert b["voltage_pu"] == pytest.approx(b["voltage_v"] / nominal, rel=1e-12)
        assert (b["band"], b["band_name"]) == (0, "within ±10 %")
    assert v["grid"]["source"] == "meters"  # the network's extremes are not on the wire
    assert v["grid"]["voltage_min_pu"] == min(b["voltage_pu"] for b in v["buses"])
    assert v["band_names"] == {"0": "within ±10 %", "1": "outside ±10 %", "2": "outside +10/−15 %"}

    async def at_once() -> tuple[VoltagesOut, dict[str, float]]:  # between two steps
        site = h.meg.site
        return voltages_of(site, nominal_phase_v(site), h.meg.scada.state.values), dict(
            h.field.plant.read()
        )

    seen, field = h.call(at_once())
    for row in seen.buses:
        # what the field's power flow gave, as the meters send it: whole volts (scale factor 0)
        volts = [round(field[f"{m}/voltage_v"]) for m in row.meters]
        assert row.voltage_v == pytest.approx(sum(volts) / len(volts), abs=1.0)


def test_each_band_by_hand() -> None:
    site = load_site("demo")
    at = datetime(2026, 6, 1, 16, 0, tzinfo=UTC)

    def v(volts: float, quality: Quality = Quality.GOOD) -> dict[str, LiveValue]:
        return {"voltage_v": LiveValue(value=volts, unit="V", ts=at, quality=quality)}

    nominal = {b: LV for b in meter_buses(site)} | {"Bus 0": MV}
    values = {
        "m-h01": v(230.0),  # 0.9959: within
        "m-h02": v(232.0),  # at the same bus: the mean, 231 V
        "m-factory": v(205.0),  # 0.8877: outside ±10 %, within −15 %
        "m-mall": v(195.0),  # 0.8444: below −15 %
        "m-office": v(255.0),  # 1.1042: above +10 %
        "m-school": v(200.0, Quality.STALE),  # not believed: no measurement
        "grid": {
            "voltage_min_pu": LiveValue(value=0.893, unit="pu", ts=at, quality=Quality.GOOD),
            "voltage_max_pu": LiveValue(value=1.02, unit="pu", ts=at, quality=Quality.GOOD),
        },
    }
    out = voltages_of(site, nominal, values)
    row = {b.bus: b for b in out.buses}
    assert (row["Bus R11"].voltage_v, row["Bus R11"].band) == (231.0, 0)
    assert row["Bus R11"].voltage_pu == pytest.approx(231.0 / LV)
    assert (row["Bus I2"].band, row["Bus I2"].band_name) == (1, "outside ±10 %")
    assert row["Bus I2"].voltage_pu == pytest.approx(0.88768, abs=1e-5)
    assert (row["Bus C1"].band, row["Bus C1"].band_name) == (2, "outside +10/−15 %")
    assert (row["Bus C13"].band, row["Bus C13"].voltage_pu) == (2, pytest.approx(1.10418, 1e-5))
    assert (row["Bus C14"].voltage_v, row["Bus C14"].band) == (None, None)
    assert (out.grid.voltage_min_pu, out.grid.band_min, out.grid.source) == (0.893, 1, "network")


def _meter_day(h: Harness) -> None:
    # 10:00 and 10:15 CEST never sent
    a_validated_meter_day(h, "2026-05-31", ("2026-05-31 10:00", "2026-05-31 10:15"))


def test_a_meter_day_with_its_vee_flags_and_versions(h: Harness) -> None:
    _meter_day(h)
    with h.client("operator") as op:
        edit = {
            "channel": "import",
            "interval_start": "2026-05-31T08:15:00Z",
            "value_kwh": 0.3,
            "reason": "read off the display",
        }
        assert op.post("/api/v1/meters/m-h03/edits", json=edit).json() == {"version": 2}
        r = op.get("/api/v1/views/meters/m-h03/day?day=2026-05-31")
        assert r.status_code == 200, r.text
        d = r.json()
        unvalidated = op.get("/api/v1/views/meters/m-h01/day?day=2026-05-31").json()
    assert (d["meter"], d["customer"], d["validated"]) == ("m-h03", "h03", True)
    rows = {x["interval_start"]: x for x in d["intervals"]}
    assert len(rows) == 96
    first = rows["2026-05-30T22:00:00Z"]  # local midnight, CEST
    assert (first["quality"], first["version"], first["raw_kwh"], first["value_kwh"]) == (
        "actual",
        0,
        0.25,
        0.25,
    )
    est = rows["2026-05-31T08:00:00Z"]
    assert (est["quality"], est["version"], est["raw_kwh"]) == ("estimated", 1, None)
    assert est["value_kwh"] == pytest.approx(0.25)  # between two intervals of 0.25 kWh
    assert est["flags"]  # VEE says which rule the gap broke
    edited = rows["2026-05-31T08:15:00Z"]
    assert (edited["quality"], edited["version"], edited["value_kwh"]) == ("edited", 2, 0.3)
    assert (edited["method"], edited["user"], edited["reason"]) == (
        "manual",
        "op",
        "read off the display",
    )
    assert sum(x["quality"] == "actual" for x in rows.values()) == 94
    assert (unvalidated["validated"], unvalidated["intervals"]) == (False, [])


def test_local_days_follow_the_site_time_zone() -> None:
    t0, t1 = local_day("2026-10-25", TZ)  # the clocks go back: 25 hours
    assert (t0.isoformat(), t1 - t0) == ("2026-10-24T22:00:00+00:00", timedelta(hours=25))
    t0, t1 = local_day("2026-03-29", TZ)  # forward: 23 hours
    assert t1 - t0 == timedelta(hours=23)


def test_the_months_issued_bills(h: Harness) -> None:
    site = h.meg.site.site
    start = pd.Timestamp("2026-08-01", tz=site.timezone)
    for customer, meter, kwh in (("h02", "m-h02", "50"), ("h01", "m-h01", "100")):
        line = BillLine(
            description="energy",
            quantity=Decimal(kwh),
            unit="kWh",
            rate=Decimal("0.11"),
            amount=Decimal(kwh) * Decimal("0.11"),
        )
        bill = Bill(
            customer=customer,
            meter=meter,
            start=start,
            end=start + pd.DateOffset(months=1),
            tariff="Residential",
            lines=(line,),
        )
        IssuedBills(h.store, site.id, site.timezone).issue(
            bill, period="2026-08", tariff_version="t", readings={}, now=START
        )
    with h.client("operator") as op:
        b = op.get("/api/v1/views/bills?period=2026-08").json()
        assert op.get("/api/v1/views/bills?period=2026-09").json()["bills"] == []
    with h.client("auditor") as audit:
        assert audit.get("/api/v1/views/bills?period=2026-08").status_code == 200
    assert (b["period"], b["currency"], b["buildings"]) == ("2026-08", "USD", ["bldg1"])
    assert [(x["number"], x["customer"], x["total"], x["kind"]) for x in b["bills"]] == [
        ("2026-08-0001", "h02", 5.5, "bill"),
        ("2026-08-0002", "h01", 11.0, "bill"),
    ]


@pytest.mark.parametrize(
    ("method", "url", "body", "status", "says"),
    [
        ("GET", "/api/v1/views/events?category=everything", None, 422, "category"),
        ("GET", "/api/v1/views/events?limit=0", None, 422, "greater than or equal to 1"),
        ("GET", "/api/v1/views/events?limit=1e9", None, 422, "valid integer"),
        ("GET", "/api/v1/views/events?before=-5", None, 422, "greater than or equal to 1"),
        ("GET", "/api/v1/views/meters/nowhere/day?day=2026-05-31", None, 404, "no meter"),
        ("GET", "/api/v1/views/meters/m-h01/day?day=2026-02-30", None, 422, "no date"),
        ("GET", "/api/v1/views/meters/m-h01/day?day=9999-01-01", None, 422, "pattern"),
        ("GET", "/api/v1/views/meters/m-h01/day?day=2026-5-1", None, 422, "pattern"),
        ("GET", "/api/v1/views/meters/m-h01/day", None, 422, "Field required"),
        ("GET", "/api/v1/views/meters/m-h01/day?day=2026-05-31&channel=both", None, 422, "import"),
        ("GET", f"/api/v1/views/meters/{'m' * 65}/day?day=2026-05-31", None, 422, "64"),
        ("GET", "/api/v1/views/bills?period=2026-13", None, 422, "pattern"),
        ("GET", "/api/v1/views/bills", None, 422, "Field required"),
        ("POST", "/api/v1/sim/utility", {"available": "perhaps"}, 422, "boolean"),
        ("POST", "/api/v1/sim/utility", {}, 422, "Field required"),
        ("POST", "/api/v1/sim/utility", {"available": True, "x": 1}, 422, "Extra inputs"),
        ("POST", "/api/v1/sim/loads/nowhere/step", {"kw": 1.0}, 404, "no load 'nowhere'"),
        ("POST", "/api/v1/sim/loads/pv-h01/step", {"kw": 1.0}, 404, "no load 'pv-h01'"),
        ("POST", "/api/v1/sim/loads/load-h01/step", {"kw": 1e9}, 422, "less than or equal"),
        ("POST", "/api/v1/sim/loads/load-h01/step", {"kw": "lots"}, 422, "valid number"),
    ],
)
def test_hostile_input_gets_a_clear_4xx(
    h: Harness, method: str, url: str, body: dict[str, Any] | None, status: int, says: str
) -> None:
    with h.client("operator") as op:
        r = op.request(method, url, json=body)
    assert r.status_code == status, r.text
    assert says in r.text


def test_non_finite_load_steps_are_refused(h: Harness) -> None:
    with h.client("operator") as op:
        for token in ("NaN", "Infinity", "-Infinity", "1e309"):
            r = op.post(
                "/api/v1/sim/loads/load-h01/step",
                content=f'{{"kw": {token}}}',
                headers={"Content-Type": "application/json"},
            )
            assert r.status_code == 422, (token, r.text)


def test_who_may_use_the_views_and_the_simulator(h: Harness) -> None:
    views = [
        "/api/v1/views/events",
        "/api/v1/views/voltages",
        "/api/v1/views/meters/m-h01/day?day=2026-05-31",
        "/api/v1/views/bills?period=2026-05",
    ]
    for role, status in (("prosumer", 403), ("service_provider", 403), ("auditor", 200)):
        with h.client(role) as c:
            for url in views:
                assert c.get(url).status_code == status, (role, url)
            assert c.get("/api/v1/sim").status_code == 403
            r = c.post("/api/v1/sim/utility", json={"available": False})
            assert r.status_code == 403, role
    with httpx.Client(base_url=h.url) as anonymous:
        assert anonymous.get("/api/v1/views/events").status_code == 401
        assert anonymous.post("/api/v1/sim/utility", json={"available": False}).status_code == 401


def test_the_simulator_needs_a_simulated_field_and_its_control(h: Harness) -> None:
    svc = h.api.services
    with h.client("operator") as op:
        r = op.post("/api/v1/sim/loads/load-h01/step", json={"kw": 0.5})
        assert r.status_code == 200, r.text
        assert _events(op, "simulation")[0]["text"] == (
            "op: the simulated load load-h01 draws +0.5 kW more"
        )
        svc.field_kind = "site"
        try:
            assert op.get("/api/v1/sim").json() == {
                "simulated": False,
                "connected": False,
                "loads": [],
                "lines": [],
            }
            r = op.post("/api/v1/sim/utility", json={"available": False})
            assert r.status_code == 409 and "site's own devices" in r.text
        finally:
            svc.field_kind = "simulated"
        control, svc.field_control = svc.field_control, None
        try:
            r = op.post("/api/v1/sim/utility", json={"available": False})
            assert r.status_code == 409 and "not connected" in r.text
        finally:
            svc.field_control = control
        assert control is not None
        url, control.url = control.url, "http://127.0.0.1:9"  # nothing listens there
        try:
            r = op.post("/api/v1/sim/utility", json={"available": True})
            assert r.status_code == 502 and "does not answer" in r.text
        finally:
            control.url = url
        assert op.get("/api/v1/live").json()["mode"] == "grid"  # nothing happened meanwhile


def test_a_simulated_fault_shows_as_switch_operations(h: Harness) -> None:
    """Last in this module: the fault and FLISR's switching change the network."""
    with h.client("operator") as op:
        assert "Line R6-R7" in op.get("/api/v1/sim").json()["lines"]
        r = op.post("/api/v1/sim/fault", json={"line": "Line X"})
        assert r.status_code == 404 and "no line 'Line X'" in r.text
        r = op.post("/api/v1/sim/fault", json={"line": "Line R6-R7"})
        assert r.status_code == 200, r.text
        assert (r.json()["tripped"], "Bus R7" in r.json()["dark_buses"]) == (["cb-r"], True)
        r = op.post("/api/v1/sim/fault", json={"line": "Line R6-R7"})
        assert r.status_code == 422 and "faulted already" in r.text

        def switching(text: str) -> list[dict[str, Any]]:
            return [e for e in _events(op, "switch") if text in e["text"]]

        _until(lambda: switching("isolated and restored"), 60.0, "FLISR did not restore")
        opened = switching("sw-r5/switch_command = 1 (open): done")
        assert opened and opened[0]["who"] == "flisr"
        r = op.post("/api/v1/sim/fault/repair")
        assert r.status_code == 200 and r.json()["line"] == "Line R6-R7"
        assert op.post("/api/v1/sim/fault/repair").status_code == 409
        _until(lambda: switching("back to its normal state"), 60.0, "not back to normal")
        sim = [e["code"] for e in _events(op, "simulation")]
        assert sim[:2] == ["repair", "fault"]
