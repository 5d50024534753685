"""/api/v1/energy over real HTTP on 127.0.0.1: a day's energy per source and sink from stored
points, checked by hand; the MEG's today, balanced; a prosumer's own premises only; what a
point is; hostile input refused with 422 saying why."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest

from openmeg.core.points import Point, PointId
from tests.api.harness import Harness

DAY = "2026-05-20"  # a day before the harness's MEG began (1 June): only what is planted below
MIDNIGHT = datetime(2026, 5, 19, 22, 0, tzinfo=UTC)  # local midnight, CEST (UTC+2)
NOON = datetime(2026, 5, 20, 10, 0, tzinfo=UTC)
NEXT_MIDNIGHT = datetime(2026, 5, 20, 22, 0, tzinfo=UTC)


def _plant(h: Harness) -> None:
    """Readings of 20 May: the counters at both local midnights, the PCC's power at each half."""

    def p(device: str, name: str, unit: str, ts: datetime, value: float) -> Point:
        return Point(
            id=PointId(site="demo", device=device, name=name), value=value, unit=unit, ts=ts
        )

    h.store.write_points(
        [
            p("pv-h01", "energy_kwh", "kWh", MIDNIGHT, 100.0),
            p("pv-h01", "energy_kwh", "kWh", NEXT_MIDNIGHT, 130.0),  # 30 kWh generated
            p("bess-h01", "energy_kwh", "kWh", MIDNIGHT, 0.0),
            p("bess-h01", "energy_kwh", "kWh", NEXT_MIDNIGHT, 2.0),  # 2 kWh discharged
            p("bess-h01", "energy_in_kwh", "kWh", MIDNIGHT, 1.0),
            p("bess-h01", "energy_in_kwh", "kWh", NEXT_MIDNIGHT, 4.0),  # 3 kWh charged
            p("m-h01", "import_kwh", "kWh", MIDNIGHT, 10.0),
            p("m-h01", "import_kwh", "kWh", NEXT_MIDNIGHT, 14.0),  # 4 kWh imported
            p("m-h01", "export_kwh", "kWh", MIDNIGHT, 5.0),
            p("m-h01", "export_kwh", "kWh", NEXT_MIDNIGHT, 15.0),  # 10 kWh exported
            # the PCC: 2 kW in for 12 h (24 kWh), then 1 kW out for 12 h (12 kWh)
            p("pcc", "import_kw", "kW", MIDNIGHT, 2.0),
            p("pcc", "import_kw", "kW", NOON, -1.0),
            p("pcc", "import_kw", "kW", NEXT_MIDNIGHT, 0.5),
        ]
    )


@pytest.fixture(scope="module")
def h(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Harness]:
    with Harness(tmp_path_factory.mktemp("energy"), step_every_s=0.01) as harness:
        _plant(harness)
        yield harness


def test_a_days_energy_of_the_meg_checked_by_hand(h: Harness) -> None:
    with h.client("operator") as op:
        r = op.get("/api/v1/energy", params={"period": "day", "date": DAY})
    assert r.status_code == 200, r.text
    e = r.json()
    assert (e["start"], e["end"]) == ("2026-05-19T22:00:00Z", "2026-05-20T22:00:00Z")
    assert (e["boundary"], e["timezone"]) == ("site", "Europe/Rome")
    assert e["sources"] == {
        "pv": 30.0,
        "wind": 0.0,
        "chp": 0.0,
        "fuel_cell": 0.0,
        "battery_discharge": 2.0,
        "grid_import": 24.0,
    }
    # 24 + 30 + 2 - 3 - 12 = 41 kWh used; h01's home: 4 - 10 + 30 + 2 - 3 = 23 kWh; 18 unmetered
    assert e["consumption_kwh"] == 41.0 and e["generation_kwh"] == 30.0
    assert e["sinks"]["battery_charge"] == 3.0 and e["sinks"]["grid_export"] == 12.0
    assert e["sinks"]["homes"] == 23.0 and e["sinks"]["unmetered"] == 18.0
    assert e["sinks"]["industry"] == e["sinks"]["commerce"] == 0.0
    assert e["self_sufficiency"] == round(1 - 24 / 41, 4)  # 0.4146
    assert e["self_consumption"] == 0.6  # 1 - 12/30
    by_device = {d["device"]: d for d in e["devices"]}
    assert by_device["pv-h01"]["measured_by"] == "counter"
    assert by_device["pcc"] | {} == {
        "device": "pcc",
        "name": "point of common coupling",
        "kind": "pcc",
        "out_kwh": 24.0,
        "in_kwh": 12.0,
        "measured_by": "power",
    }
    # the month: the same readings, and the PCC's 0.5 kW of 21 May held to the month's end
    # (11 days): 24 + 0.5 * 24 * 11 = 156 kWh imported
    with h.client("operator") as op:
        month = op.get("/api/v1/energy", params={"period": "month", "date": DAY}).json()
    assert (month["start"], month["end"]) == ("2026-04-30T22:00:00Z", "2026-05-31T22:00:00Z")
    assert month["sources"] == e["sources"] | {"grid_import": 156.0}
    assert month["consumption_kwh"] == 41.0 + 132.0


def test_a_prosumer_gets_their_own_premises(h: Harness) -> None:
    with h.client("prosumer") as pro:
        e = pro.get("/api/v1/energy", params={"period": "day", "date": DAY}).json()
    assert e["boundary"] == "premises"
    # at h01's meter: 4 in, 10 out, 30 generated, 2 discharged, 3 charged: 23 kWh used at home
    assert e["sources"] == {"pv": 30.0, "battery_discharge": 2.0, "grid_import": 4.0}
    assert e["sinks"] == {"battery_charge": 3.0, "grid_export": 10.0, "homes": 23.0}
    assert e["self_sufficiency"] == round(1 - 4 / 23, 4)  # 0.8261
    assert e["self_consumption"] == round(1 - 10 / 30, 4)  # 0.6667
    assert {d["device"] for d in e["devices"]} == {"pv-h01", "bess-h01", "m-h01"}
    assert e["heat"] == {}


def test_today_of_the_running_meg_balances(h: Harness) -> None:
    time.sleep(3)  # some MEG minutes
    h.call(h.meg.historian.pump())
    h.meg.historian.flush()
    with h.client("operator") as op:
        e = op.get("/api/v1/energy").json()
        sp = op.get("/api/v1/energy?period=today").json()
    assert e["period"] == "today" and e["start"] == "2026-05-31T22:00:00Z"
    assert e["generation_kwh"] > 0 and e["consumption_kwh"] > 0
    assert sum(e["sources"].values()) == pytest.approx(sum(e["sinks"].values()), abs=0.01)
    # the counters of one instant: no premises used less than nothing (the community's units
    # behind their meter add up to what it exported)
    assert all(v >= -0.05 for v in e["sinks"].values()), e["sinks"]
    assert 0 <= e["self_sufficiency"] <= 1
    imported, used = e["sources"]["grid_import"], e["consumption_kwh"]
    assert e["self_sufficiency"] == pytest.approx(1 - imported / used, abs=1e-3)
    assert sp["sources"]["pv"] >= e["sources"]["pv"]  # later, not less
    # the service provider sees the MEG's energy, no customer's meter (privacy)
    with h.client("service_provider") as prov:
        s = prov.get("/api/v1/energy").json()
    assert "loads" in s["sinks"] and "homes" not in s["sinks"]
    assert not any(d["device"].startswith("m-") for d in s["devices"])


def test_what_a_point_is(h: Harness) -> None:
    with h.client("prosumer") as pro:
        pv = pro.get("/api/v1/points/pv-h01/p_kw").json()
        assert (pv["unit"], pv["quality"]) == ("kW", "good") and pv["value"] is not None
        assert pro.get("/api/v1/points/pv-h01/soc").json()["value"] is None
        assert pro.get("/api/v1/points/m-h01/import_kwh").json()["unit"] == "kWh"
        other = pro.get("/api/v1/points/pv-h03/p_kw")
        assert other.status_code == 403 and "your own" in other.text
        unknown = pro.get("/api/v1/points/pv-h01/bogus")
        assert unknown.status_code == 404 and "no point name 'bogus'" in unknown.text


@pytest.mark.parametrize(
    ("query", "says"),
    [
        ("period=foo", "'today', 'day' or 'month'"),
        ("period=", "'today', 'day' or 'month'"),
        ("period=day&date=2026-13-40", "date"),
        ("period=day&date=yesterday", "date"),
        ("period=day&date=0001-01-01", "between 1970 and 2200"),
        ("period=month&date=9999-12-31", "between 1970 and 2200"),
        ("period=day&date=2026-06-05", "2026-06-05 has not begun"),
        ("period=today&date=2026-05-20", "ask for the day and its date"),
        ("period=%00", "'today', 'day' or 'month'"),
    ],
)
def test_hostile_input_gets_422_saying_why(h: Harness, query: str, says: str) -> None:
    with h.client("operator") as op:
        r = op.get(f"/api/v1/energy?{query}")
    assert r.status_code == 422, r.text
    assert says in r.text
