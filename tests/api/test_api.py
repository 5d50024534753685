"""The API over real HTTP on 127.0.0.1: authentication on every route, the role matrix (deny by
default), a prosumer kept to their own premises, bad payloads refused with 422 changing
nothing, login limits, token expiry and audience, commands reaching the plant, alarms, metrics."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import timedelta
from decimal import Decimal

import httpx
import jwt
import pandas as pd
import pytest
from fastapi.routing import APIRoute

from openmeg.api.roles import ROLE_MATRIX
from openmeg.core.identity import Principal, Tokens
from openmeg.core.messages import AlarmMessage, alarm_topic
from openmeg.provider.billing import Bill, BillLine
from openmeg.provider.issued_bills import IssuedBills
from tests.api.harness import PASSWORD, START, Harness

ROLES = ("operator", "prosumer", "service_provider", "auditor")
DAY = "start=2026-06-01T00:00Z&end=2026-06-02T00:00Z"


@pytest.fixture(scope="module")
def h(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Harness]:
    with Harness(tmp_path_factory.mktemp("api")) as harness:
        yield harness


def _routes(h: Harness) -> list[APIRoute]:
    """The API's routes (included routers opened up), but the token route."""
    found: list[object] = []
    for r in h.api.app.routes:
        found += (getattr(r, "original_router", None) and r.original_router.routes) or [r]  # type: ignore[attr-defined]
    return [
        r
        for r in found
        if isinstance(r, APIRoute)
        and r.path.startswith("/api/v1")
        and r.name not in {"token", "logout"}  # public: they carry their own credentials
    ]


# a path that names h01's things, for each route: what a prosumer h01 may see
PATH_FOR = {
    "{device}": "pv-h01",
    "{name}": "p_kw",
    "{meter}": "m-h01",
    "{customer}": "h01",
    "{building}": "bldg1",
    "{source}": "nobody",
    "{code}": "nothing",
}
QUERY_FOR = {
    "point_history": DAY,
    "meter_readings": DAY,
    "prices_between": DAY,
    "trading_accounts_of": DAY,
    "revenue_of": DAY,
    "market_settlement_of": DAY,
    "market_settled_days_of": DAY,
    "bill_of": "period=2026-06",
    "basic_charge_of": "period=2026-06",
}


def _url(route: APIRoute) -> str:
    path = route.path
    for k, v in PATH_FOR.items():
        path = path.replace(k, v)
    query = QUERY_FOR.get(route.name)
    return f"{path}?{query}" if query else path


def _call(client: httpx.Client, route: APIRoute) -> httpx.Response:
    method = sorted(route.methods)[0]
    return client.request(method, _url(route), json={} if method in ("POST", "PUT") else None)


def test_every_route_is_in_the_role_matrix(h: Harness) -> None:
    names = {r.name for r in _routes(h)}
    assert names == set(ROLE_MATRIX), names ^ set(ROLE_MATRIX)


def test_every_route_needs_a_token(h: Harness) -> None:
    with h.client() as anonymous:
        for route in _routes(h):
            r = _call(anonymous, route)
            assert r.status_code == 401, (route.path, r.status_code, r.text)
            assert r.headers["www-authenticate"] == "Bearer"
        forged = jwt.encode(
            {"sub": "op", "role": "operator"}, "not-the-key-" * 4, algorithm="HS256"
        )
        r = anonymous.get("/api/v1/me", headers={"Authorization": f"Bearer {forged}"})
        assert r.status_code == 401


def test_the_role_matrix_denies_what_it_does_not_allow(h: Harness) -> None:
    for role in ROLES:
        with h.client(role) as client:
            for route in _routes(h):
                r = _call(client, route)
                if role in ROLE_MATRIX[route.name]:
                    # allowed to the role; a 403 only for what is not theirs (their scope)
                    scoped = "another customer" in r.text or "you own no part" in r.text
                    assert r.status_code != 403 or scoped, (role, route.path)
                else:
                    assert r.status_code == 403, (role, route.path, r.status_code)
                    assert f"the role {role} may not do this" in r.text


def test_a_route_missing_from_the_matrix_is_refused_to_everybody(h: Harness) -> None:
    saved = ROLE_MATRIX.pop("me")
    try:
        with h.client("operator") as op:
            assert op.get("/api/v1/me").status_code == 403
    finally:
        ROLE_MATRIX["me"] = saved
    with h.client("operator") as op:
        assert op.get("/api/v1/me").json() == {"name": "op", "role": "operator", "customer": None}


@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/meters/m-h02/readings?" + DAY,
        "/api/v1/bills/h02?period=2026-06",
        "/api/v1/trading/h05",
        "/api/v1/trading/h05/accounts?" + DAY,
        "/api/v1/devices/bess-h05",
        "/api/v1/revenue?device=pv-h03&" + DAY,
        "/api/v1/points/pv-h03/p_kw/history?" + DAY,
    ],
)
def test_a_prosumer_reading_anothers_data_gets_403(h: Harness, path: str) -> None:
    with h.client("prosumer") as pro:
        r = pro.get(path)
    assert r.status_code == 403 and "your own" in r.text


def test_the_basic_charge_is_asked_for_by_period_as_bills_are(h: Harness) -> None:
    # each route has its own month parameter: a shared one once took the bills' name in both,
    # so that the page's ?month= was refused with the raw "period: Field required"
    with h.client("operator") as op:
        params = op.get("/openapi.json").json()["paths"]["/api/v1/basic-charges/{building}"]
        names = [p["name"] for p in params["get"]["parameters"]]
        assert names == ["building", "period"]
        r = op.get("/api/v1/basic-charges/bldg1?period=2026-05")
        assert r.status_code in (200, 409), r.text  # 409: no readings of that month here
        assert op.get("/api/v1/basic-charges/bldg1?period=2026-13").status_code == 422
        assert op.get("/api/v1/basic-charges/bldg1?month=2026-05").status_code == 422


def test_a_prosumer_sees_their_own_only(h: Harness) -> None:
    with h.client("prosumer") as pro:
        assert [m["id"] for m in pro.get("/api/v1/meters").json()] == ["m-h01"]
        devices = {d["id"] for d in pro.get("/api/v1/devices").json()}
        assert devices == {"load-h01", "pv-h01", "bess-h01"}
        live = pro.get("/api/v1/live").json()
        assert set(live["devices"]) <= {"load-h01", "pv-h01", "bess-h01", "m-h01", "pcc"}
        site = pro.get("/api/v1/site").json()
        assert site["customers"] == ["h01"]
        # what the pages need to show numbers and times: currency, frequency, time zone, and
        # whether the field is openmeg's simulated one (the harness runs the simulated field)
        assert (site["currency"], site["frequency_hz"], site["timezone"], site["field"]) == (
            "USD",
            50,
            "Europe/Rome",
            "simulated",
        )
    with h.client("operator") as op:
        assert len(op.get("/api/v1/meters").json()) == len(h.meg.site.meters)


def test_readings_bills_and_history_for_the_owner(h: Harness) -> None:
    idx = pd.date_range("2026-06-01T04:00Z", periods=4, freq="15min")
    frame = pd.DataFrame(
        {"meter": "m-h01", "channel": "import", "interval_start": idx, "value_kwh": [0.25] * 4}
    )
    h.meg.readings.ingest(frame, meters={"m-h01"}, source="test", received_at=START)
    with h.client("prosumer") as pro:
        r = pro.get("/api/v1/meters/m-h01/readings?" + DAY)
        assert r.status_code == 200
        assert [x["value_kwh"] for x in r.json()] == [0.25] * 4
        bill = pro.get("/api/v1/bills/h01?period=2026-06")
        assert bill.status_code == 404 and "no bill issued to h01 for 2026-06" in bill.text


def test_bills_are_the_issued_ones_never_recomputed(h: Harness) -> None:
    site = h.meg.site.site
    issued = IssuedBills(h.store, site.id, site.timezone)
    start = pd.Timestamp("2026-07-01", tz=site.timezone)

    def july(kwh: str) -> Bill:
        energy = BillLine(
            description="energy",
            quantity=Decimal(kwh),
            unit="kWh",
            rate=Decimal("0.11"),
            amount=(Decimal(kwh) * Decimal("0.11")).quantize(Decimal("0.01")),
        )
        return Bill(
            customer="h01",
            meter="m-h01",
            start=start,
            end=start + pd.DateOffset(months=1),
            tariff="Residential",
            lines=(energy,),
        )

    first, _ = issued.issue(
        july("100"), period="2026-07", tariff_version="t", readings={}, now=START
    )
    issued.issue(july("102"), period="2026-07", tariff_version="t", readings={}, now=START)
    with h.client("prosumer") as pro:
        newest = pro.get("/api/v1/bills/h01?period=2026-07").json()
        original = pro.get("/api/v1/bills/h01?period=2026-07&revision=1").json()
        assert pro.get("/api/v1/bills/h01?period=2026-07&revision=3").status_code == 404
    assert (newest["number"], newest["revision"], newest["revisions"]) == ("2026-07-0001", 2, 2)
    assert (newest["kind"], newest["total"], newest["difference"]) == ("debit note", 11.22, 0.22)
    assert newest["note"] == [
        {"description": "energy", "quantity": 2.0, "unit": "kWh", "rate": 0.11, "amount": 0.22}
    ]
    assert (original["revision"], original["kind"], original["total"]) == (1, "bill", 11.0)
    assert original["difference"] is None and original["content_hash"] == first.content_hash


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"device": "bess-h01", "name": "p_set_kw", "value": "lots"}, "valid number"),
        ({"device": "bess-h01", "name": "p_set_kw"}, "Field required"),
        ({"device": "nowhere", "name": "p_set_kw", "value": 1.0}, "no device 'nowhere'"),
        ({"device": "pv-h01", "name": "p_kw", "value": 1.0}, "cannot be written"),
        ({"device": "pcc", "name": "utility_available", "value": 0.0}, "cannot be written"),
        ({"device": "pcc", "name": "switch_command", "value": 7.0}, "refused by pcc"),
        ({"device": "bess-h01", "name": "p_set_kw", "value": 99.0}, "out of bess-h01's rating"),
        ({"device": "bess-h01", "name": "p_set_kw", "value": 1.0, "extra": 1}, "Extra inputs"),
    ],
)
def test_bad_commands_get_422_and_change_nothing(
    h: Harness, body: dict[str, object], message: str
) -> None:
    # nothing reaches the wire (the batteries and the CHP are written by their controllers)
    devices = h.field.servers.devices
    quiet = [d for d in devices if not d.startswith("bess-") and d != "chp1"]
    before = {d: devices[d].writes + devices[d].refused for d in quiet}
    with h.client("operator") as op:
        r = op.post("/api/v1/commands", json=body)
    assert r.status_code == 422 and message in r.text, r.text
    assert {d: devices[d].writes + devices[d].refused for d in quiet} == before


def test_bad_trading_settings_get_422_and_change_nothing(h: Harness) -> None:
    good = {"windows": [{"purchase": 0.06, "sale": 0.2}], "incentive_per_kwh": 0}
    with h.client("prosumer") as pro:
        assert pro.put("/api/v1/trading/h01", json=good).status_code == 200
        for bad in (
            {"windows": [{"purchase": -0.1, "sale": 0.2}]},
            {"windows": [{"purchase": "cheap", "sale": 0.2}]},
            {"windows": [{"purchase": 0.3, "sale": 0.2}]},
            {
                "windows": [
                    {"purchase": 0.1, "sale": 0.2, "from_hour": 6, "to_hour": 9},
                    {"purchase": 0.1, "sale": 0.2, "from_hour": 8, "to_hour": 10},
                ]
            },
            {"windows": []},
        ):
            r = pro.put("/api/v1/trading/h01", json=bad)
            assert r.status_code == 422, (bad, r.text)
        assert pro.get("/api/v1/trading/h01").json()["windows"] == [
            {"purchase": 0.06, "sale": 0.2, "from_hour": 0, "to_hour": 24}
        ]
        assert pro.delete("/api/v1/trading/h01").status_code == 204
        assert pro.get("/api/v1/trading/h01").status_code == 404


def test_login_failures_are_limited(h: Harness) -> None:
    with httpx.Client(base_url=h.url) as c:
        form = {"grant_type": "password", "username": "audit", "password": "wrong password!"}
        codes = [c.post("/api/v1/auth/token", data=form).status_code for _ in range(6)]
        assert codes == [401] * 5 + [429]
        ok = {**form, "password": PASSWORD}
        r = c.post("/api/v1/auth/token", data=ok)
        assert r.status_code == 429 and int(r.headers["retry-after"]) > 0  # even the right one
        assert c.post("/api/v1/auth/token", data={"grant_type": "implicit"}).status_code == 422
    h.api.services.limiter.succeeded("audit", "127.0.0.1")
    actions = [r.action for r in h.api.services.audit.records(limit=1000)]
    assert actions.count("login_failed") >= 5


def test_client_credentials_and_token_expiry_and_audience(h: Harness) -> None:
    with h.client("operator") as op:
        r = op.post(
            "/api/v1/users",
            json={"name": "meter-app", "role": "service_provider", "kind": "client"},
        )
        assert r.status_code == 201
        secret = r.json()["secret"]
        bad = op.post("/api/v1/users", json={"name": "x", "role": "king"})
        assert bad.status_code == 422
    with httpx.Client(base_url=h.url) as c:
        r = c.post(
            "/api/v1/auth/token",
            data={
                "grant_type": "client_credentials",
                "client_id": "meter-app",
                "client_secret": secret,
            },
        )
        assert r.status_code == 200
        token = r.json()["access_token"]
        claims = jwt.decode(token, options={"verify_signature": False})
        assert claims["aud"] == "openmeg-api" and claims["exp"] - claims["iat"] == 900
        me = c.get("/api/v1/me", headers={"Authorization": f"Bearer {token}"}).json()
        assert me == {"name": "meter-app", "role": "service_provider", "customer": None}
        key = h.meg.keystore.secret("jwt/signing")
        old = Tokens(key, issuer="demo", ttl_s=1).issue(
            Principal(name="op", role="operator"), h.api.services.wall.now() - timedelta(hours=1)
        )
        r = c.get("/api/v1/me", headers={"Authorization": f"Bearer {old}"})
        assert r.status_code == 401 and "expired" in r.text
        other = jwt.encode(
            {
                "sub": "op",
                "role": "operator",
                "aud": "another-api",
                "iss": "demo",
                "exp": time.time() + 60,
            },
            key,
            algorithm="HS256",
        )
        r = c.get("/api/v1/me", headers={"Authorization": f"Bearer {other}"})
        assert r.status_code == 401 and "audience" in r.text.lower()


def test_a_command_islands_the_meg_and_is_audited(h: Harness) -> None:
    with h.client("operator") as op:
        r = op.post(
            "/api/v1/commands", json={"device": "pcc", "name": "switch_command", "value": 1}
        )
        assert r.status_code == 200 and r.json()["accepted"] is True
        for _ in range(100):
            if op.get("/api/v1/live").json()["mode"] == "island":
                break
            time.sleep(0.05)
        else:
            pytest.fail("the MEG did not island")
        r = op.post(
            "/api/v1/commands", json={"device": "pcc", "name": "switch_command", "value": 2}
        )
        assert r.status_code == 200
    last = h.api.services.audit.records(limit=1000)[-1]
    assert (last.actor, last.action, last.target) == ("op", "command", "pcc/switch_command")


def test_alarms_are_listed_and_acknowledged(h: Harness) -> None:
    alarm = AlarmMessage(
        site="demo",
        source="sensor-chp1",
        code="hot",
        text="too hot",
        active=True,
        ts=START,
        severity="warning",
    )
    h.call(h.bus.publish(alarm_topic("demo", "sensor-chp1"), alarm))
    with h.client("operator") as op:
        for _ in range(100):
            keys = [a["key"] for a in op.get("/api/v1/alarms").json()]
            if "sensor-chp1/hot" in keys:
                break
            time.sleep(0.05)
        assert "sensor-chp1/hot" in keys
        with h.client("auditor") as aud:
            assert aud.post("/api/v1/alarms/sensor-chp1/hot/ack").status_code == 403
        r = op.post("/api/v1/alarms/sensor-chp1/hot/ack")
        assert r.status_code == 200 and r.json()["acknowledged_by"] == "op"
        assert op.post("/api/v1/alarms/test/none/ack").status_code == 404


def test_metrics_and_health_are_public(h: Harness) -> None:
    with httpx.Client(base_url=h.url) as c:
        assert c.get("/health").json()["status"] == "ok"
        text = c.get("/metrics").text
    for name in (
        "openmeg_cycle_time_ms",
        "openmeg_cycles_total",
        "openmeg_readings_ingested_total",
        "openmeg_vee_days_validated_total",
        "openmeg_http_requests_total",
        "openmeg_http_server_errors_total",
    ):
        assert name in text
    assert 'route="/api/v1/live"' in text


def test_history_at_a_resolution(h: Harness) -> None:
    h.call(h.meg.historian.pump())
    h.meg.historian.flush()
    with h.client("service_provider") as sp:
        r = sp.get(
            "/api/v1/points/pcc/frequency_hz/history",
            params={"start": "2026-06-01T15:00Z", "end": "2026-06-01T18:00Z", "resolution": "1h"},
        )
        assert r.status_code == 200
        assert all(abs(p["value"] - 50.0) < 0.5 for p in r.json())
        bad = sp.get(
            "/api/v1/points/pcc/frequency_hz/history",
            params={"start": "2026-06-01T15:00", "end": "2026-06-01T18:00Z"},
        )
        assert bad.status_code == 422 and "time zone" in bad.text


def test_the_openapi_document_and_docs(h: Harness) -> None:
    with httpx.Client(base_url=h.url) as c:
        doc = c.get("/openapi.json").json()
        assert "/api/v1/live" in doc["paths"] and "/api/v1/auth/token" in doc["paths"]
        assert c.get("/docs").status_code == 200


def _frames(ws: object, seconds: float) -> list[dict[str, object]]:
    import json

    out = []
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            out.append(json.loads(ws.recv(timeout=max(0.01, deadline - time.monotonic()))))  # type: ignore[attr-defined]
        except TimeoutError:
            break
    return out


def test_the_stream_sends_subscribed_points_modes_and_alarms(h: Harness) -> None:
    import json

    from websockets.sync.client import connect

    ws_url = h.url.replace("http", "ws") + "/api/v1/stream?token="
    with connect(ws_url + h.tokens["operator"]) as ws:
        frames = _frames(ws, 3.0)
        devices = {p[0] for f in frames for p in f.get("points", [])}  # type: ignore[union-attr]
        assert {"pcc", "pv-h01", "bess-community"} <= devices
        ws.send(json.dumps({"subscribe": {"topics": ["points"], "devices": ["pv-h01"]}}))
        time.sleep(0.5)
        _frames(ws, 0.3)  # what was already on its way
        frames = _frames(ws, 3.0)
        assert frames and all(
            p[0] == "pv-h01"
            for f in frames
            for p in f["points"]  # type: ignore[union-attr]
        )
        assert all(set(f) <= {"sent_at", "points"} for f in frames)
    with connect(ws_url + h.tokens["prosumer"]) as ws:
        frames = _frames(ws, 3.0)
        devices = {p[0] for f in frames for p in f.get("points", [])}  # type: ignore[union-attr]
        assert devices and devices <= {"load-h01", "pv-h01", "bess-h01", "m-h01"}
    with connect(ws_url + "not-a-token") as ws, pytest.raises(Exception, match="4401"):
        ws.recv(timeout=5)


def test_a_meter_edit_is_versioned_and_audited(h: Harness) -> None:
    edit = {
        "channel": "import",
        "interval_start": "2026-06-01T04:00:00Z",
        "value_kwh": 0.3,
        "reason": "meter replaced, reading from the old register",
    }
    with h.client("operator") as op:
        r = op.post("/api/v1/meters/m-h01/edits", json=edit)
        assert r.status_code == 201 and r.json() == {"version": 1}
        for bad in ({**edit, "value_kwh": -1}, {**edit, "reason": ""}, {**edit, "channel": "x"}):
            assert op.post("/api/v1/meters/m-h01/edits", json=bad).status_code == 422
        assert op.post("/api/v1/meters/nope/edits", json=edit).status_code == 404
        check = op.get("/api/v1/audit/verify").json()
    assert check == {"intact": True, "problems": []}
    last = [r for r in h.api.services.audit.records(limit=10_000) if r.action == "meter_edit"]
    assert len(last) == 1 and last[0].actor == "op"
    assert last[0].detail["after_kwh"] == 0.3 and last[0].target.startswith("m-h01/import/")


def test_a_device_added_at_run_time_is_listed_commandable_and_audited(h: Harness) -> None:
    from openmeg.core.messages import DeviceAdd, device_add_topic
    from tests.sunspec_device import BATTERY_700, SunSpecDevice

    battery = h.call(
        SunSpecDevice([(1, {**BATTERY_700[0][1], "SN": "api-bat"}), *BATTERY_700[1:]]).start()
    )
    try:
        address = f"127.0.0.1:{battery.port}:1"
        with h.client("operator") as op:
            r = op.post("/api/v1/devices/authorisations", json={"address": address})
            assert r.status_code == 200, r.text
            token = r.json()["authorisation"]
        h.call(
            h.bus.publish(
                device_add_topic("demo"),
                DeviceAdd(site="demo", address=address, ts=START, authorisation=token),
            )
        )
        with h.client("operator") as op:
            for _ in range(100):
                listed = {d["id"]: d for d in op.get("/api/v1/devices").json()}
                if "api-bat" in listed:
                    break
                time.sleep(0.05)
            added = listed["api-bat"]
            assert (added["origin"], added["kind"], added["monitored_only"]) == (
                "added",
                "storage",
                None,
            )
            assert added["address"] == f"127.0.0.1:{battery.port}:1"
            assert added["models"] == [1, 701, 702, 704, 802]
            assert op.get("/api/v1/devices/api-bat").status_code == 200
            r = op.post(
                "/api/v1/commands", json={"device": "api-bat", "name": "p_set_kw", "value": -2.0}
            )
            assert r.status_code == 200 and r.json()["accepted"] is True, r.text
            r = op.post(
                "/api/v1/commands", json={"device": "api-bat", "name": "p_set_kw", "value": 90.0}
            )
            assert r.status_code == 422 and "rating" in r.text
        with h.client("prosumer") as pro:  # the community's device, not a prosumer's
            assert "api-bat" not in {d["id"] for d in pro.get("/api/v1/devices").json()}
    finally:
        h.call(battery.stop())
    actions = [(r.actor, r.action, r.target) for r in h.api.services.audit.records(limit=1000)]
    assert ("op", "device_add", "api-bat") in actions
    assert ("op", "command", "api-bat/p_set_kw") in actions
    assert ("op", "command_refused", "api-bat/p_set_kw") in actions


@pytest.mark.parametrize("period", ["2026-13", "2026-00", "9999-12"])
def test_a_bills_period_that_is_no_month_gets_422(h: Harness, period: str) -> None:
    with h.client("prosumer") as pro:
        r = pro.get(f"/api/v1/bills/h01?period={period}")
        assert r.status_code == 422 and "period" in r.text
