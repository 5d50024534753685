"""A premises' building automation through the API over real HTTP: the demo's two BAS served
over BACnet/IP by simulated building plants, each polled by its energy management in a live
MEG; the points, commands, supply status, findings and reports for the operator and the
premises' own prosumer, and every malformed or unauthorised request refused with 4xx."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import httpx
import numpy as np
import pytest

from openmeg.app import LiveApi, LiveMeg
from openmeg.sim.bas_wire import BasServers
from openmeg.sim.physics.building import BuildingPlant
from tests.api.harness import START, USERS, Harness
from tests.keys import shared_keystore

BAS_USERS = {
    **USERS,
    "pro_office": ("pro-office", "prosumer", "office"),
    "pro_o1": ("pro-o1", "prosumer", "o1"),
}


def f32(x: float) -> float:
    return float(np.float32(x))


def get(h: Harness, role: str | None, path: str) -> httpx.Response:
    with h.client(role) as c:
        return c.get(path)


def post(h: Harness, role: str | None, path: str, **kw: object) -> httpx.Response:
    with h.client(role) as c:
        return c.post(path, **kw)  # type: ignore[arg-type]


class BasHarness(Harness):
    """A live MEG with no DER field but the site's BAS on the wire, polled every second."""

    users = BAS_USERS

    async def _start(self) -> None:
        site = self._open_spine()
        tz = site.site.timezone
        self.plants = {b.id: BuildingPlant(b, timezone=tz) for b in site.bas}
        for plant in self.plants.values():
            plant.step(START, 1.0, 18.0)
        self.wire = BasServers(site, self.plants, free_ports=True)
        plan = await self.wire.start()
        self.meg = LiveMeg(
            site,
            clock=self.clock,
            bus=self.bus,
            store=self.store,
            keystore=shared_keystore(),
            step_s=1.0,
            bas_addresses={w.id: (w.host, w.port) for w in plan},
            bas_poll_s=1.0,
        )
        await self.meg.start()
        self.api = LiveApi(self.meg, self.wall, port=self.port)
        await self.api.start()
        self._create_users()
        self._running = True
        self._stepper = asyncio.create_task(self._step())

    async def _step(self) -> None:
        while self._running:
            for plant in self.plants.values():
                plant.step(self.clock.now(), 1.0, 18.0)
            self.clock.advance(1.0)
            await self.meg.step()
            await asyncio.sleep(self.step_every_s)

    async def _stop(self) -> None:
        self._running = False
        await self._stepper
        await self.api.stop()
        await self.meg.stop()
        await self.wire.stop()
        self.store.close()


@pytest.fixture(scope="module")
def h(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BasHarness]:
    with BasHarness(tmp_path_factory.mktemp("bas")) as harness:
        while harness.meg.bems["bas-office"].series.__len__() < 3:
            harness.call(asyncio.sleep(0.05))
        yield harness


def test_the_operator_and_the_premises_prosumer_read_the_bas_points(h: BasHarness) -> None:
    for role in ("operator", "pro_office", "auditor"):
        r = get(h, role, "/api/v1/bas/office/points")
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["bas"] == "bas-office" and len(body["points"]) == 29
        got = {f"{p['equipment']}.{p['point']}": p for p in body["points"]}
        assert all(p["quality"] == "good" for p in got.values())
        assert got["ahu-1.space_temp_setpoint_c"]["value"] == 21.0
        assert got["ahu-1.space_temp_setpoint_c"]["low"] == 16.0
        assert got["ahu-1.fan_kw"]["writable"] is False and got["ahu-1.fan_kw"]["low"] is None
        assert got["hp-1.water_setpoint_c"]["value"] == 7.0  # cooling in June: 7 degC water
    r = get(h, "pro_o1", "/api/v1/bas/bldg1/points")
    assert r.status_code == 200 and r.json()["bas"] == "bas-linden"


@pytest.mark.parametrize(
    ("role", "path", "status"),
    [
        ("prosumer", "/api/v1/bas/office/points", 403),  # h01's login
        ("pro_o1", "/api/v1/bas/office/points", 403),
        ("pro_office", "/api/v1/bas/bldg1/supply", 403),
        ("service_provider", "/api/v1/bas/office/points", 403),
        ("operator", "/api/v1/bas/h01/points", 404),
        ("operator", "/api/v1/bas/nowhere/findings", 404),
        ("operator", "/api/v1/bas/..%2F..%2Fetc/points", 404),
        ("operator", "/api/v1/bas/" + "x" * 65 + "/points", 422),
        ("operator", "/api/v1/bas/office/reports/week?day=2026-06-01", 422),
        ("operator", "/api/v1/bas/office/reports/day?day=2026-13-01", 422),
        ("operator", "/api/v1/bas/office/reports/day?day=2300-01-01", 422),
        ("operator", "/api/v1/bas/office/reports/day", 422),
        ("operator", "/api/v1/bas/office/reports/day?day=2026-06-01&format=doc", 422),
        ("operator", "/api/v1/bas/office/reports/day?day=2025-06-01", 409),
        (None, "/api/v1/bas/office/points", 401),
    ],
)
def test_reads_refused_with_a_clear_4xx(
    h: BasHarness, role: str | None, path: str, status: int
) -> None:
    r = get(h, role, path)
    assert r.status_code == status, r.text
    assert r.json()["detail"]


def test_a_command_reaches_the_plant_is_read_back_and_audited(h: BasHarness) -> None:
    r = post(
        h,
        "operator",
        "/api/v1/bas/office/commands",
        json={"equipment": "ahu-1", "point": "space_temp_setpoint_c", "value": 22.5},
    )
    assert r.status_code == 200, r.text
    assert r.json()["readback"] == 22.5
    assert h.plants["bas-office"].read()["ahu-1.space_temp_setpoint_c"] == 22.5
    r = post(
        h,
        "pro_office",
        "/api/v1/bas/office/commands",
        json={"equipment": "light-meeting", "point": "scene", "value": 2, "reason": "dim"},
    )
    assert r.status_code == 200, r.text
    assert h.plants["bas-office"].read()["light-meeting.scene"] == 2.0
    done = [
        (a.actor, a.target) for a in h.meg.audit.records(limit=10_000) if a.action == "bas_command"
    ]
    assert done[-2:] == [
        ("op", "demo/ahu-1/space_temp_setpoint_c"),
        ("pro-office", "demo/light-meeting/scene"),
    ]


@pytest.mark.parametrize(
    ("role", "premises", "body", "status"),
    [
        (
            "operator",
            "office",
            {"equipment": "ahu-1", "point": "space_temp_setpoint_c", "value": 40},
            422,
        ),
        ("operator", "office", {"equipment": "ahu-1", "point": "fan_kw", "value": 1}, 422),
        ("operator", "office", {"equipment": "fire-1", "point": "alarm", "value": 0}, 422),
        ("operator", "office", {"equipment": "ahu-7", "point": "fan_on", "value": 1}, 422),
        ("operator", "office", {"equipment": "light-open", "point": "scene", "value": 2.5}, 422),
        ("prosumer", "office", {"equipment": "ahu-1", "point": "fan_on", "value": 0}, 403),
        ("auditor", "office", {"equipment": "ahu-1", "point": "fan_on", "value": 0}, 403),
        ("service_provider", "office", {"equipment": "ahu-1", "point": "fan_on", "value": 0}, 403),
        ("operator", "h01", {"equipment": "ahu-1", "point": "fan_on", "value": 0}, 404),
    ],
)
def test_a_bad_or_unauthorised_command_is_refused_audited_and_changes_nothing(
    h: BasHarness, role: str, premises: str, body: dict[str, object], status: int
) -> None:
    before = h.meg.audit.count()
    setpoints = {k: v for k, v in h.plants["bas-office"].read().items() if "setpoint" in k}
    r = post(h, role, f"/api/v1/bas/{premises}/commands", json=body)
    assert r.status_code == status, r.text
    assert r.json()["detail"]
    after = [a for a in h.meg.audit.records(after=before) if "refused" in a.action]
    assert len(after) == 1 and after[0].actor == BAS_USERS[role][0]
    now = {k: v for k, v in h.plants["bas-office"].read().items() if "setpoint" in k}
    assert now == setpoints


@pytest.mark.parametrize(
    "raw",
    [
        b'{"equipment": "ahu-1", "point": "space_temp_setpoint_c", "value": NaN}',
        b'{"equipment": "ahu-1", "point": "space_temp_setpoint_c", "value": "hot"}',
        b'{"equipment": "ahu-1", "point": "space_temp_setpoint_c", "value": 21, "x": 1}',
        b'{"equipment": "ahu-1", "point": "space_temp_setpoint_c"}',
        b"[1, 2]",
        b"not json",
    ],
)
def test_a_malformed_command_gets_422(h: BasHarness, raw: bytes) -> None:
    r = post(
        h,
        "operator",
        "/api/v1/bas/office/commands",
        content=raw,
        headers={"Content-Type": "application/json"},
    )
    assert r.status_code == 422, r.text
    assert h.plants["bas-office"].read()["ahu-1.space_temp_setpoint_c"] in (21.0, 22.5)


def test_the_supply_status_findings_and_reports(h: BasHarness) -> None:
    r = get(h, "pro_office", "/api/v1/bas/office/supply")
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["premises"] == "office" and body["supplies"][0]["supply"] == "grid"
    assert body["mode"] in ("grid", "island", "blackout")
    r = get(h, "pro_office", "/api/v1/bas/office/findings")
    assert r.status_code == 200, r.text
    assert r.json() == []  # a fault-free building, a few seconds of it
    r = get(h, "operator", "/api/v1/bas/office/reports/day?day=2026-06-01")
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/html")
    assert "Daily BAS report bas-office (office) 2026-06-01" in r.text
    r = get(h, "pro_office", "/api/v1/bas/office/reports/month?day=2026-06-15&format=pdf")
    assert r.status_code == 200 and r.content.startswith(b"%PDF-")
    assert r.headers["content-type"] == "application/pdf"
    assert "bas-bas-office-2026-06-15-month.pdf" in r.headers["content-disposition"]


def test_a_signed_command_on_the_bus_reaches_the_bas_and_is_answered(h: BasHarness) -> None:
    from datetime import UTC, datetime

    from openmeg.core.identity import Principal
    from openmeg.core.messages import CommandMessage, command_result_topic, command_topic

    op = Principal(name="op", role="operator")
    point = ("ahu-1", "supply_temp_setpoint_c")

    async def send(value: float, token: str) -> object:
        sub = await h.bus.subscribe(command_result_topic("demo", *point))
        try:
            msg = CommandMessage(
                site="demo",
                device=point[0],
                name=point[1],
                value=value,
                ts=h.clock.now(),
                authorisation=token,
            )
            await h.bus.publish(command_topic("demo", *point), msg)
            return (await sub.get(timeout=10))[1]
        finally:
            await h.bus.unsubscribe(sub)

    token = h.meg.authority.sign_command(op, *point, 18.0, datetime.now(UTC))
    answer = h.call(send(18.0, token))
    assert answer.accepted and answer.value == 18.0, answer  # type: ignore[attr-defined]
    assert h.plants["bas-office"].read()["ahu-1.supply_temp_setpoint_c"] == 18.0
    answer = h.call(send(18.0, token))  # the same authorisation again: a replay
    assert not answer.accepted and "used already" in answer.reason  # type: ignore[attr-defined]
    forged = h.meg.authority.sign_command(op, *point, 30.0, datetime.now(UTC))
    answer = h.call(send(30.0, forged))  # signed, but out of the point's 10..26 degC
    assert not answer.accepted and "10..26" in answer.reason  # type: ignore[attr-defined]
    assert h.plants["bas-office"].read()["ahu-1.supply_temp_setpoint_c"] == 18.0
