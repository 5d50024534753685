"""The prosumer's app's API on a live MEG: their premises now and today in the page's sign
convention, their trading accounts against the reference prices they set (hand-checked), the
alarms of their own devices only, and refusals that change nothing."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import datetime, timedelta

import pytest

from openmeg.api.routes_prosumer import day_start
from openmeg.core.messages import AlarmMessage, alarm_topic
from tests.api.harness import START, Harness
from tests.api.prosumer_data import DAY, yesterdays_trades


@pytest.fixture(scope="module")
def h(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Harness]:
    with Harness(tmp_path_factory.mktemp("prosumer-api")) as harness:
        yield harness


def test_local_midnight_is_the_start_of_today() -> None:
    assert day_start(START, "America/New_York") == datetime.fromisoformat("2026-06-01T04:00Z")
    assert day_start(START - timedelta(hours=13), "America/New_York") == datetime.fromisoformat(
        "2026-05-31T04:00Z"
    )


def test_a_prosumer_sees_their_premises_now_and_today(h: Harness) -> None:
    time.sleep(3)  # some seconds of the MEG's time with values
    with h.client("prosumer") as pro:
        r = pro.get("/api/v1/prosumers/h01/now")
        assert r.status_code == 200, r.text
        now = r.json()
        assert now["meter"]["id"] == "m-h01"
        assert now["day_start"] == "2026-05-31T22:00:00Z"
        devices = {d["id"]: d for d in now["devices"]}
        assert set(devices) == {"load-h01", "pv-h01", "bess-h01"}
        pv, bess = devices["pv-h01"], devices["bess-h01"]
        assert pv["role"] == "source" and pv["power_kw"] >= 0  # 18:00 CEST in June
        assert bess["role"] == "storage" and 0 <= bess["soc_pct"] <= 100
        assert bess["capacity_kwh"] == 10.0
        assert bess["charging_kw"] == max(-bess["power_kw"], 0.0)
        assert bess["discharging_kw"] == max(bess["power_kw"], 0.0)
        m = now["meter"]
        assert min(m["import_kw"], m["export_kw"]) == 0.0
        # what the home uses: the net import plus what PV and the battery give it
        net = m["import_kw"] - m["export_kw"]
        assert now["consumption_kw"] == pytest.approx(
            max(net + pv["power_kw"] + bess["power_kw"], 0.0), abs=1e-9
        )
        assert now["consumption_kw"] >= 0
        assert m["today_import_kwh"] >= 0 and m["today_export_kwh"] >= 0
        assert pv["today_out_kwh"] >= 0
        # another's premises: refused; an unknown one: not found
        assert pro.get("/api/v1/prosumers/h03/now").status_code == 403
        assert pro.get("/api/v1/prosumers/nobody/now").status_code == 404
    with h.client("operator") as op:
        h03 = op.get("/api/v1/prosumers/h03/now").json()
        ev = next(d for d in h03["devices"] if d["id"] == "ev-h03")
        assert ev["role"] == "load"  # an EV charger's power is consumption, positive
        assert ev["power_kw"] is None or ev["power_kw"] >= 0


def test_the_accounts_reckon_the_trades_against_the_reference_prices(h: Harness) -> None:
    yesterdays_trades(h)
    windows = [
        {"from_hour": 0, "to_hour": 11, "purchase": 0.05, "sale": 0.15},
        {"from_hour": 11, "to_hour": 24, "purchase": 0.12, "sale": 0.30},
    ]
    with h.client("prosumer") as pro:
        assert pro.put("/api/v1/trading/h01", json={"windows": windows}).status_code == 200
        a = pro.get(f"/api/v1/prosumers/h01/trading-accounts?{DAY}").json()
        assert (a["meter"], a["trading"]) == ("m-h01", True)
        # 4 kWh sold at 0.20 = 0.80, 2 kWh bought at 0.10 = 0.20
        assert (a["sales"], a["purchases"], a["net"]) == (0.80, 0.20, 0.60)
        assert (a["export_kwh"], a["import_kwh"]) == (4.0, 2.0)
        assert a["missing_intervals"] == 96 - 8
        morning, rest = a["windows"]
        assert (morning["from_hour"], morning["to_hour"], morning["reference_sale"]) == (
            0,
            11,
            0.15,
        )
        assert morning["mean_sale_price"] == pytest.approx(0.20)
        # sold at 0.20 what the reference values at 0.15: 0.80 - 4 x 0.15 = 0.20 gained
        assert (morning["sales_at_reference"], morning["gained_against_reference"]) == (0.60, 0.20)
        # bought at 0.10 below the reference of 0.12: 2 x 0.12 - 0.20 = 0.04 saved
        assert (rest["purchases_at_reference"], rest["saved_against_reference"]) == (0.24, 0.04)
        assert a["against_reference"] == 0.24

        # a higher sale reference in the morning: less gained against it
        windows[0]["sale"] = 0.18
        assert pro.put("/api/v1/trading/h01", json={"windows": windows}).status_code == 200
        a = pro.get(f"/api/v1/prosumers/h01/trading-accounts?{DAY}").json()
        assert a["windows"][0]["sales_at_reference"] == 0.72
        assert a["windows"][0]["gained_against_reference"] == 0.08
        assert a["against_reference"] == 0.12
        assert a["sales"] == 0.80  # what was earned does not depend on the reference

        # refused values change nothing
        before = pro.get("/api/v1/trading/h01").json()
        for bad, says in (
            ({**windows[0], "sale": 1000.0}, "must be at most 5 per kWh"),
            ({**windows[0], "purchase": 0.5, "sale": 0.4}, "must lie below the sale reference"),
            ({**windows[0], "purchase": -1}, "greater than or equal to 0"),
        ):
            r = pro.put("/api/v1/trading/h01", json={"windows": [bad, windows[1]]})
            assert r.status_code == 422 and says in r.text, r.text
        r = pro.put(
            "/api/v1/trading/h01",
            content=b'{"windows": [{"purchase": NaN, "sale": 0.3}]}',
            headers={"Content-Type": "application/json"},
        )
        assert r.status_code == 422
        # an incentive beyond any price: refused (1e300 once overflowed the accounts into a 500)
        for incentive in (5.01, 1000.0, 1e300):
            body = {"windows": windows, "incentive_per_kwh": incentive}
            r = pro.put("/api/v1/trading/h01", json=body)
            assert r.status_code == 422 and "less than or equal to 5" in r.text, r.text
        assert pro.get(f"/api/v1/prosumers/h01/trading-accounts?{DAY}").status_code == 200
        assert pro.get("/api/v1/trading/h01").json() == before
        # hostile periods and another's accounts
        assert (
            pro.get(
                "/api/v1/prosumers/h01/trading-accounts?start=2026-05-31T04:00&end=2026-06-01T04:00Z"
            ).status_code
            == 422
        )
        assert (
            pro.get(
                "/api/v1/prosumers/h01/trading-accounts?start=2026-01-01T00:00Z&end=2026-06-01T04:00Z"
            ).status_code
            == 422
        )
        assert pro.get(f"/api/v1/prosumers/h03/trading-accounts?{DAY}").status_code == 403
        pro.delete("/api/v1/trading/h01")
        a = pro.get(f"/api/v1/prosumers/h01/trading-accounts?{DAY}").json()
        assert a["trading"] is False and a["against_reference"] is None
        assert a["sales"] == 0.80 and [w["reference_sale"] for w in a["windows"]] == [None]


def test_a_prosumer_sees_the_alarms_of_their_own_devices_only(h: Harness) -> None:
    for source in ("bess-h01", "pv-h03"):
        alarm = AlarmMessage(
            site="demo",
            source=source,
            code="overtemperature",
            text=f"{source} at 61 °C",
            active=True,
            ts=START,
            severity="warning",
        )
        h.call(h.bus.publish(alarm_topic("demo", source), alarm))
    deadline = time.monotonic() + 10
    with h.client("operator") as op:
        while time.monotonic() < deadline:
            keys = {a["key"] for a in op.get("/api/v1/alarms").json()}
            if {"bess-h01/overtemperature", "pv-h03/overtemperature"} <= keys:
                break
            time.sleep(0.1)
        assert {"bess-h01/overtemperature", "pv-h03/overtemperature"} <= keys
    with h.client("prosumer") as pro:
        assert [a["key"] for a in pro.get("/api/v1/alarms").json()] == ["bess-h01/overtemperature"]
        assert pro.post("/api/v1/alarms/bess-h01/overtemperature/ack").status_code == 403
    with h.client("prosumer_h05") as other:
        assert other.get("/api/v1/alarms").json() == []
