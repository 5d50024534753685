"""Attacks on the command path of a running MEG operating a simulated field over Modbus TCP:
anonymous and wrongly authorised commands (a guessed key, a prosumer's token, an expired one,
one for another value, a replay), bad values (NaN, inf, 1.5 for a switch, a setpoint beyond a
battery's rating, unknown devices and points) on the bus and through the API, and device adds
to addresses the site does not allow. Each is refused with its reason, audited, and the MEG
runs on with nothing written to the field; an authorised operator's command still works."""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from openmeg.core.audit import AuditLog, AuditRecord
from openmeg.core.bus import Bus
from openmeg.core.command_auth import authorise_command, authorise_device_add
from openmeg.core.identity import Principal
from openmeg.core.messages import (
    CommandMessage,
    CommandResult,
    DeviceAdd,
    DeviceAdded,
    command_topic,
    device_add_topic,
    device_added_topic,
)
from openmeg.core.site import load_site
from openmeg.core.store import Store
from tests.api.harness import Harness
from tests.field_harness import LiveSite, live_site
from tests.keys import audit_key
from tests.sunspec_device import BATTERY_700, SunSpecDevice

T0 = datetime(2026, 6, 1, 12, tzinfo=UTC)
KEY = "the-site-token-signing-key-" + "0" * 37
OPERATOR = Principal(name="operator-1", role="operator")
PROSUMER = Principal(name="pro-h01", role="prosumer", customer="h01")


def now() -> datetime:
    return datetime.now(UTC)  # authorisations run on real time


async def _live(bus: Bus, store: Store) -> LiveSite:
    """The demo without controllers: nothing but an operator's command writes to the field."""
    site = load_site("demo").model_copy(update={"controllers": ()})
    return await live_site(bus, store, start=T0, site=site, command_key=KEY)


def _refusals(store: Store, action: str) -> list[AuditRecord]:
    return [r for r in AuditLog(store, audit_key()).records(limit=10_000) if r.action == action]


async def _send(
    live: LiveSite, results: Any, device: str, name: str, value: float, token: str
) -> CommandResult:
    msg = CommandMessage(
        site="demo", device=device, name=name, value=value, ts=T0, authorisation=token
    )
    await live.meg.bus.publish(command_topic("demo", device, name), msg)
    for _ in range(50):
        await live.step()
        if results.pending():
            break
        await asyncio.sleep(0.02)
    _, result = await results.get(timeout=5)
    assert isinstance(result, CommandResult)
    return result


async def test_commands_without_a_valid_operators_authorisation_do_not_island_the_meg(
    bus: Bus, store: Store
) -> None:
    live = await _live(bus, store)
    results = await bus.subscribe("meg/demo/command-result/#")
    sw = ("pcc", "switch_command")
    replayed = authorise_command(KEY, "demo", OPERATOR, *sw, 0.0, now())
    attacks = [
        ("", "no authorisation", "unauthenticated"),
        (
            authorise_command("guessed-" * 8, "demo", OPERATOR, *sw, 1.0, now()),
            "Signature verification failed",
            "operator-1 (unverified)",
        ),
        (
            authorise_command(KEY, "demo", PROSUMER, *sw, 1.0, now()),
            "only an operator may command, not a 'prosumer'",
            "pro-h01 (unverified)",
        ),
        (
            authorise_command(KEY, "demo", OPERATOR, *sw, 1.0, now() - timedelta(seconds=61)),
            "has expired",
            "operator-1 (unverified)",
        ),
        (
            authorise_command(KEY, "demo", OPERATOR, *sw, 2.0, now()),
            "another command (value 2.0, not 1.0)",
            "operator-1 (unverified)",
        ),
        (
            authorise_command(KEY, "other-site", OPERATOR, *sw, 1.0, now()),
            "Invalid issuer",
            "operator-1 (unverified)",
        ),
    ]
    try:
        await live.step(3)
        writes = {d: live.writes(d) for d in live.field.servers.devices}
        for token, reason, _ in attacks:
            result = await _send(live, results, *sw, 1.0, token)
            assert not result.accepted and reason in result.reason, result.reason
        assert live.meg.status.mode == "grid" and live.meg.status.commands == 0
        assert {d: live.writes(d) for d in live.field.servers.devices} == writes
        # a valid authorisation works once (0: the transfer switch does nothing) ...
        done = await _send(live, results, *sw, 0.0, replayed)
        assert done.accepted and live.writes("pcc") == writes["pcc"] + 1
        again = await _send(live, results, *sw, 0.0, replayed)
        assert not again.accepted and "used already (a replay)" in again.reason
        assert live.writes("pcc") == writes["pcc"] + 1
        # ... and the operator's own command islands the MEG, in the operator's name
        token = authorise_command(KEY, "demo", OPERATOR, *sw, 1.0, now())
        assert (await _send(live, results, *sw, 1.0, token)).accepted
        await live.step(20)
        assert live.meg.status.mode == "island"
    finally:
        await live.stop()
    refused = _refusals(store, "command_refused")
    assert [(r.actor, r.target) for r in refused] == [
        *[(actor, "pcc/switch_command") for _, _, actor in attacks],
        ("operator-1 (unverified)", "pcc/switch_command"),
    ]
    for record, (_, reason, _) in zip(refused, attacks, strict=False):
        assert reason in record.detail["reason"] and record.detail["via"] == "bus"
    done_records = _refusals(store, "command")
    assert [(r.actor, r.detail["value"]) for r in done_records] == [
        ("operator-1", 0.0),
        ("operator-1", 1.0),
    ]
    assert "user" not in CommandMessage.model_fields  # no field of the message names an actor


BAD_VALUES = [
    ("pcc", "switch_command", math.nan, "needs a finite number, got nan"),
    ("pcc", "switch_command", math.inf, "needs a finite number, got inf"),
    ("pcc", "switch_command", -math.inf, "needs a finite number, got -inf"),
    ("pcc", "switch_command", 1.5, "pcc/switch_command takes a whole number, got 1.5"),
    ("sw-r5", "switch_command", 1.5, "sw-r5/switch_command takes a whole number, got 1.5"),
    ("pcc", "switch_command", 7.0, "7.0 is out of range for pcc/switch_command"),
    ("bess-h01", "p_set_kw", 50.0, "50.0 kW is out of bess-h01's rating"),
    ("bess-h01", "p_set_kw", -1e300, "kW is out of bess-h01's rating"),
    ("bess-h01", "connected", 0.5, "bess-h01/connected takes a whole number, got 0.5"),
    ("nowhere", "p_set_kw", 1.0, "unknown device 'nowhere'"),
    ("pv-h01", "soc", 0.5, "pv-h01 cannot be commanded 'soc'"),
]


async def test_bad_values_on_the_bus_are_refused_before_anything_is_written(
    bus: Bus, store: Store
) -> None:
    live = await _live(bus, store)
    results = await bus.subscribe("meg/demo/command-result/#")
    try:
        await live.step(3)
        writes = {d: live.writes(d) for d in live.field.servers.devices}
        for device, name, value, reason in BAD_VALUES:
            token = authorise_command(KEY, "demo", OPERATOR, device, name, value, now())
            result = await _send(live, results, device, name, value, token)
            assert not result.accepted and reason in result.reason, result.reason
            assert math.isfinite(result.value)
        assert {d: live.writes(d) for d in live.field.servers.devices} == writes
        assert live.meg.status.mode == "grid" and live.meg.status.commands == 0
        cycles = live.meg.status.cycles
        await live.step(3)  # the MEG runs on
        assert live.meg.status.cycles == cycles + 3 and live.meg.status.mode == "grid"
    finally:
        await live.stop()
    refused = _refusals(store, "command_refused")
    assert [(r.actor, r.target) for r in refused] == [
        ("operator-1", f"{d}/{n}") for d, n, _, _ in BAD_VALUES
    ]
    for record, (_, _, _, reason) in zip(refused, BAD_VALUES, strict=True):
        assert reason in record.detail["reason"] and record.detail["accepted"] is False


async def test_a_command_on_a_topic_outside_the_vocabulary_is_audited_and_the_meg_runs_on(
    bus: Bus, store: Store
) -> None:
    live = await _live(bus, store)
    try:
        await live.step(2)
        writes = {d: live.writes(d) for d in live.field.servers.devices}
        msg = CommandMessage(
            site="demo", device="pcc", name="switch_command", value=1.0, ts=T0, authorisation=""
        )
        await live.meg.bus.publish("meg/demo/command/pcc; drop table/switch_command", msg)
        cycles = live.meg.status.cycles
        await live.step(3)
        assert live.meg.status.cycles == cycles + 3 and live.meg.status.mode == "grid"
        assert {d: live.writes(d) for d in live.field.servers.devices} == writes
    finally:
        await live.stop()
    [refused] = _refusals(store, "command_refused")
    assert (refused.actor, refused.target) == ("unauthenticated", "pcc; drop table/switch_command")
    assert refused.detail["reason"] == (
        "a command message must name the device and point of its topic (the topic names no "
        "device and point of the vocabulary)"
    )


class _Listener:
    """A TCP server that counts the connections it is offered (and answers none)."""

    def __init__(self, host: str) -> None:
        self.host, self.connections, self.port = host, 0, 0

    async def start(self) -> _Listener:
        async def seen(_r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
            self.connections += 1
            w.close()

        self.server = await asyncio.start_server(seen, self.host, 0)
        self.port = self.server.sockets[0].getsockname()[1]
        return self

    async def stop(self) -> None:
        self.server.close()
        await self.server.wait_closed()


async def test_device_adds_need_an_operator_and_an_allowed_address(bus: Bus, store: Store) -> None:
    live = await _live(bus, store)
    replies = await bus.subscribe(device_added_topic("demo"))
    battery = await SunSpecDevice(BATTERY_700).start()
    inside = await _Listener("127.0.0.1").start()  # allowed, but nobody may add it unsigned
    outside = await _Listener("127.0.0.2").start()  # outside the demo's networks
    real = f"127.0.0.1:{battery.port}:1"

    async def add(address: str, token: str) -> DeviceAdded:
        msg = DeviceAdd(site="demo", address=address, ts=T0, authorisation=token)
        await bus.publish(device_add_topic("demo"), msg)
        for _ in range(50):
            await live.step()
            if replies.pending():
                break
            await asyncio.sleep(0.02)
        _, reply = await replies.get(timeout=5)
        assert isinstance(reply, DeviceAdded) and reply.address == address
        return reply

    def signed(address: str, who: Principal = OPERATOR, key: str = KEY) -> str:
        return authorise_device_add(key, "demo", who, address, now())

    attacks = [
        (f"127.0.0.1:{inside.port}:1", "", "no authorisation", "unauthenticated"),
        (real, signed(real, PROSUMER), "not a 'prosumer'", "pro-h01 (unverified)"),
        (real, signed(real, key="guessed-" * 8), "Signature", "operator-1 (unverified)"),
        (real, signed("127.0.0.1:15099:1"), "another command", "operator-1 (unverified)"),
        ("127.0.0.1:5432:1", signed("127.0.0.1:5432:1"), "127.0.0.1:5432 is outside", "operator-1"),
        ("127.0.0.1:6379:1", signed("127.0.0.1:6379:1"), "127.0.0.1:6379 is outside", "operator-1"),
        (
            f"127.0.0.2:{outside.port}:1",
            signed(f"127.0.0.2:{outside.port}:1"),
            f"127.0.0.2:{outside.port} is outside the networks where this site adds devices "
            "(127.0.0.1/32:502,1502,10000-65535)",
            "operator-1",
        ),
    ]
    try:
        await live.step(2)
        links = set(live.meg.feeder.links)
        for address, token, reason, _ in attacks:
            reply = await add(address, token)
            assert not reply.ok and reason in reply.reason, reply.reason
        assert (inside.connections, outside.connections) == (0, 0)  # no connection made
        assert set(live.meg.feeder.links) == links and live.meg.status.mode == "grid"
        ok = await add(real, signed(real))
        assert ok.ok and ok.device == "bat-7"
    finally:
        await live.stop()
        await battery.stop()
        await inside.stop()
        await outside.stop()
    refused = _refusals(store, "device_add_refused")
    assert [(r.actor, r.target) for r in refused] == [(a, t) for t, _, _, a in attacks]
    for record, (_, _, reason, _) in zip(refused, attacks, strict=True):
        assert reason in record.detail["reason"] and record.detail["ok"] is False
    [added] = _refusals(store, "device_add")
    assert (added.actor, added.target) == ("operator-1", "bat-7")


# ---- the same through the API -------------------------------------------------------------


@pytest.fixture(scope="module")
def h(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Harness]:
    with Harness(tmp_path_factory.mktemp("attacks-api")) as harness:
        yield harness


def _writes(h: Harness) -> dict[str, int]:
    return {
        d: s.writes
        for d, s in h.field.servers.devices.items()
        if d.startswith(("pcc", "sw-", "pv-"))
    }


API_BAD = [
    ('{"device": "pcc", "name": "switch_command", "value": NaN}', "a finite number, not nan"),
    ('{"device": "pcc", "name": "switch_command", "value": Infinity}', "a finite number, not inf"),
    ('{"device": "pcc", "name": "switch_command", "value": 1.5}', "takes a whole number, got 1.5"),
    ('{"device": "pcc", "name": "switch_command", "value": 0.5}', "takes a whole number"),
    ('{"device": "pv-h01", "name": "p_set_kw", "value": 1e6}', "kW is out of pv-h01's rating"),
    ('{"device": "bess-h01", "name": "p_set_kw", "value": 50}', "50.0 kW is out of bess-h01's"),
    ('{"device": "nowhere", "name": "p_set_kw", "value": 1}', "no device 'nowhere'"),
    ('{"device": "pcc", "name": "soc", "value": 1}', "'soc' cannot be written"),
]


def test_bad_values_through_the_api_get_422_with_the_reason_and_are_audited(h: Harness) -> None:
    before = _writes(h)
    seen = len(h.api.services.audit.records(limit=100_000))
    with h.client("operator") as op:
        for body, reason in API_BAD:
            r = op.post(
                "/api/v1/commands", content=body, headers={"Content-Type": "application/json"}
            )
            assert r.status_code == 422 and reason in r.json()["detail"], (body, r.text)
        assert op.get("/api/v1/live").json()["mode"] == "grid"
    with h.client("prosumer") as pro:
        r = pro.post(
            "/api/v1/commands", json={"device": "pcc", "name": "switch_command", "value": 1}
        )
        assert r.status_code == 403
    assert _writes(h) == before
    new = h.api.services.audit.records(limit=100_000)[seen:]
    refused = [r for r in new if r.action == "command_refused"]
    assert [r.actor for r in refused] == ["op"] * len(API_BAD) + ["pro-h01"]
    for record, (_, reason) in zip(refused, API_BAD, strict=False):
        assert reason in record.detail["reason"]
    assert refused[-1].target == "/api/v1/commands"
    assert refused[-1].detail["reason"] == "the role prosumer may not command"


def test_an_operator_gets_an_authorisation_that_the_bus_honours_once(h: Harness) -> None:
    body = {"device": "pcc", "name": "switch_command", "value": 0}
    with h.client("prosumer") as pro:
        assert pro.post("/api/v1/commands/authorisations", json=body).status_code == 403
        assert (
            pro.post(
                "/api/v1/devices/authorisations", json={"address": "127.0.0.1:502:1"}
            ).status_code
            == 403
        )
    with h.client("operator") as op:
        nan = op.post(
            "/api/v1/commands/authorisations",
            content='{"device": "pcc", "name": "switch_command", "value": NaN}',
            headers={"Content-Type": "application/json"},
        )
        assert nan.status_code == 422 and "finite" in nan.json()["detail"]
        r = op.post("/api/v1/commands/authorisations", json=body)
        assert r.status_code == 200 and r.json()["expires_in_s"] == 60.0
        token = r.json()["authorisation"]
    before = h.field.servers.devices["pcc"].writes
    results = h.call(h.bus.subscribe("meg/demo/command-result/pcc/switch_command"))
    msg = CommandMessage(
        site="demo", device="pcc", name="switch_command", value=0.0, ts=T0, authorisation=token
    )
    answers = []
    for _ in range(2):  # the second time, a replay
        h.call(h.bus.publish(command_topic("demo", "pcc", "switch_command"), msg))
        _, answer = h.call(results.get(timeout=10))
        answers.append(answer)
    assert [(a.accepted, a.reason[:40]) for a in answers] == [
        (True, ""),
        (False, "the authorisation was used already (a re"),
    ]
    deadline = time.monotonic() + 5
    while h.field.servers.devices["pcc"].writes == before and time.monotonic() < deadline:
        time.sleep(0.05)
    assert h.field.servers.devices["pcc"].writes == before + 1
    records = h.api.services.audit.records(limit=100_000)
    [granted] = [r for r in records if r.action == "command_authorised"][-1:]
    assert (granted.actor, granted.target) == ("op", "pcc/switch_command")
    done = [r for r in records if r.action == "command" and r.target == "pcc/switch_command"]
    assert done[-1].actor == "op"
