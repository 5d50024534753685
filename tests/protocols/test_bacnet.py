"""The BACnet/IP adapter: a BAS served by ``BacnetServer`` and read and written by
``BacnetClient`` over UDP on 127.0.0.1."""

from __future__ import annotations

import asyncio
import math
import socket
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from bacpypes3.apdu import (
    ErrorRejectAbortNack,
    WritePropertyMultipleRequest,
    WritePropertyRequest,
)
from bacpypes3.basetypes import PropertyValue, WriteAccessSpecification
from bacpypes3.constructeddata import Any as AnyValue
from bacpypes3.pdu import Address
from bacpypes3.primitivedata import (
    Boolean,
    CharacterString,
    Enumerated,
    Null,
    ObjectIdentifier,
    Real,
    Unsigned,
)

from openmeg.core.audit import AuditLog
from openmeg.core.building_automation import BasSystem
from openmeg.core.errors import CommandError, DeviceError
from openmeg.core.site import load_site
from openmeg.core.store import Store, sqlite_url
from openmeg.protocols.bacnet import BacnetServer
from openmeg.protocols.bacnet_client import BacnetClient, BacnetRefusal

BAS = load_site("demo").bas[0]  # bas-office
T0 = datetime(2026, 6, 1, 12, tzinfo=UTC)


def exact_values(bas: BasSystem) -> dict[str, float]:
    """A value for every point that a 32-bit BACnet REAL carries exactly."""
    out: dict[str, float] = {}
    for e, p, instance in bas.objects():
        if p.binary:
            out[f"{e.id}.{p.name}"] = float(instance % 2)
        elif p.states:
            out[f"{e.id}.{p.name}"] = float(1 + instance % len(p.states))
        else:
            out[f"{e.id}.{p.name}"] = p.low + (instance % 7) * 0.25  # quarters are exact
    return out


@dataclass
class Plant:
    """A test double of the plant behind the BAS: a dict of values and the commands taken."""

    values: dict[str, float]
    commands: list[tuple[str, float]] = field(default_factory=list)

    def read(self) -> dict[str, float]:
        return dict(self.values)

    def command(self, name: str, value: float) -> None:
        self.commands.append((name, value))
        self.values[name] = value

    def relinquish(self, name: str) -> None:
        if not name.endswith(("fan_on", "mode", "armed")):
            raise CommandError(f"{name} cannot be relinquished")
        self.commands.append((name, math.nan))


@pytest.fixture
def plant() -> Plant:
    return Plant(exact_values(BAS))


@pytest.fixture
def audit(tmp_path: Path) -> Iterator[AuditLog]:
    store = Store(sqlite_url(tmp_path / "audit.db"))
    store.create_schema()
    try:
        yield AuditLog(store, b"k" * 32)
    finally:
        store.close()


@pytest.fixture
async def served(plant: Plant, audit: AuditLog) -> AsyncIterator[BacnetServer]:
    server = BacnetServer(
        BAS,
        values=plant.read,
        command=plant.command,
        relinquish=plant.relinquish,
        port=0,
        audit=audit,
        now=lambda: T0,
    )
    async with server:
        yield server


@pytest.fixture
async def client(served: BacnetServer) -> AsyncIterator[BacnetClient]:
    async with BacnetClient(BAS, port=served.port, timeout_s=2.0) as c:
        yield c


async def test_every_point_read_back_exactly_one_by_one_and_all_at_once(
    plant: Plant, client: BacnetClient
) -> None:
    names = [f"{e.id}.{p.name}" for e, p, _ in BAS.objects()]
    assert len(names) == 10 + 7 + 4 + 4 + 2 + 2
    one_by_one = {n: await client.read(n) for n in names}
    assert one_by_one == plant.values
    assert await client.read_many(names) == plant.values
    # hand-checked: ahu-1 is block 0, fan_speed_pct offset 1 -> 0 + 1 * 0.25
    assert one_by_one["ahu-1.fan_speed_pct"] == 0.25
    # hp-1 block 1: water_setpoint_c instance 101, low 5 + (101 % 7 = 3) * 0.25
    assert one_by_one["hp-1.water_setpoint_c"] == 5.75
    # hp-1.mode instance 100: state 1 + 100 % 3 = 2 ("heat")
    assert one_by_one["hp-1.mode"] == 2.0


async def test_the_values_follow_the_source(plant: Plant, client: BacnetClient) -> None:
    plant.values["ahu-1.supply_temp_c"] = 17.5
    assert await client.read("ahu-1.supply_temp_c") == 17.5
    plant.values["ahu-1.supply_temp_c"] = -3.125
    assert await client.read("ahu-1.supply_temp_c") == -3.125


async def test_each_object_names_itself_and_its_units_and_status(
    plant: Plant, client: BacnetClient
) -> None:
    assert str(await client.read_property("ahu-1.fan_kw", "object-name")) == "ahu-1.fan_kw"
    assert str(await client.read_property("ahu-1.fan_kw", "units")) == "kilowatts"
    assert str(await client.read_property("hp-1.water_temp_c", "units")) == "degrees-celsius"
    assert str(await client.read_property("ahu-1.filter_dp_pa", "units")) == "pascals"
    assert bool(await client.read_property("ahu-1.fan_kw", "out-of-service")) is False
    oid = await client.read_property("light-open.level_pct", "object-identifier")
    assert (str(oid[0]), oid[1]) == BAS.instance_of("light-open", "level_pct")
    assert BAS.instance_of("light-open", "level_pct") == ("analog-value", 201)
    flags = await client.read_property("ahu-1.fan_kw", "status-flags")
    assert list(flags) == [0, 0, 0, 0]
    plant.values["fire-1.alarm"] = 1.0  # the panel raises its alarm: in-alarm
    assert list(await client.read_property("fire-1.alarm", "status-flags")) == [1, 0, 0, 0]
    plant.values["ahu-1.fan_kw"] = math.nan  # no reading: fault
    assert list(await client.read_property("ahu-1.fan_kw", "status-flags")) == [0, 1, 0, 0]
    states = await client.read_property("hp-1.mode", "state-text")
    assert [str(s) for s in states] == ["off", "heat", "cool"]


async def test_a_write_reaches_the_command_callback_and_reads_back(
    plant: Plant, served: BacnetServer, client: BacnetClient, audit: AuditLog
) -> None:
    await client.write("ahu-1.space_temp_setpoint_c", 21.5)
    await client.write("hp-1.mode", 3)  # cool
    await client.write("security-1.armed", 1)
    await client.write("light-meeting.scene", 2)
    assert plant.commands == [
        ("ahu-1.space_temp_setpoint_c", 21.5),
        ("hp-1.mode", 3.0),
        ("security-1.armed", 1.0),
        ("light-meeting.scene", 2.0),
    ]
    assert await client.read("ahu-1.space_temp_setpoint_c") == 21.5
    assert await client.read("hp-1.mode") == 3.0
    records = audit.records()
    assert [(r.action, r.target) for r in records] == [
        ("bas.write", "bas-office/ahu-1.space_temp_setpoint_c"),
        ("bas.write", "bas-office/hp-1.mode"),
        ("bas.write", "bas-office/security-1.armed"),
        ("bas.write", "bas-office/light-meeting.scene"),
    ]
    assert records[0].detail["value"] == 21.5
    assert records[0].actor.startswith("bacnet:127.0.0.1:")


async def _raw_write(client: BacnetClient, server: BacnetServer, oid: Any, value: Any) -> Any:
    """A WriteProperty straight through the stack, past the client's own checks."""
    node = client._started()
    return await node.write_property(
        Address(f"127.0.0.1:{server.port}"), ObjectIdentifier(oid), "present-value", value
    )


@pytest.mark.parametrize(
    ("oid", "value", "code"),
    [
        (("analog-value", 7), 28.5, "value-out-of-range"),  # ahu-1.space_temp_setpoint_c 16..28
        (("analog-value", 7), 15.75, "value-out-of-range"),
        (("analog-value", 7), math.nan, "value-out-of-range"),
        (("analog-value", 7), math.inf, "value-out-of-range"),
        (("analog-value", 7), -math.inf, "value-out-of-range"),
        (("analog-value", 1), 100.5, "value-out-of-range"),  # ahu-1.fan_speed_pct 0..100
        (("multi-state-value", 100), 4, "value-out-of-range"),  # hp-1.mode has 3 states
        (("multi-state-value", 100), 0, "value-out-of-range"),
        (("analog-input", 5), 1.0, "write-access-denied"),  # ahu-1.fan_kw is measured
        (("binary-input", 400), "inactive", "write-access-denied"),  # fire-1.alarm
        (("analog-value", 99), 20.0, "unknown-object"),
        (("analog-value", 9999), 20.0, "unknown-object"),
    ],
)
async def test_a_bad_write_is_refused_with_its_bacnet_error_and_changes_nothing(
    plant: Plant,
    served: BacnetServer,
    client: BacnetClient,
    audit: AuditLog,
    oid: tuple[str, int],
    value: Any,
    code: str,
) -> None:
    before = dict(plant.values)
    with pytest.raises(ErrorRejectAbortNack) as refused:
        answer = await _raw_write(client, served, oid, value)
        if isinstance(answer, ErrorRejectAbortNack):
            raise answer
    assert str(refused.value.errorCode) == code
    assert plant.commands == []
    assert plant.values == before
    (record,) = audit.records()
    assert record.action == "bas.write.refused"
    assert served.writes[-1].error != ""
    # and the device keeps serving
    assert await client.read("ahu-1.space_temp_setpoint_c") == before["ahu-1.space_temp_setpoint_c"]


async def test_a_write_the_plant_refuses_is_refused_on_the_wire(
    plant: Plant, served: BacnetServer, client: BacnetClient
) -> None:
    def refuse(name: str, value: float) -> None:
        raise CommandError(f"{name}: the plant is in manual override")

    served._command = refuse
    with pytest.raises(BacnetRefusal) as refused:
        await client.write("ahu-1.fan_speed_pct", 50.0)
    assert refused.value.code == "value-out-of-range"
    assert served.writes[-1].error == "valueOutOfRange"
    assert served.writes[-1].reason == "ahu-1.fan_speed_pct: the plant is in manual override"


async def test_the_client_checks_before_it_sends(client: BacnetClient, plant: Plant) -> None:
    with pytest.raises(CommandError, match=r"no point 'ahu-1\.nothing'"):
        await client.read("ahu-1.nothing")
    with pytest.raises(CommandError, match="read-only"):
        await client.write("ahu-1.fan_kw", 1.0)
    with pytest.raises(CommandError, match="finite"):
        await client.write("ahu-1.fan_speed_pct", math.nan)
    with pytest.raises(CommandError, match="whole state number"):
        await client.write("hp-1.mode", 2.5)  # not rounded to a state
    with pytest.raises(CommandError, match=r"0 \(inactive\) or 1 \(active\), not 2"):
        await client.write("security-1.armed", 2.0)
    with pytest.raises(BacnetRefusal, match="value-out-of-range"):
        await client.write("ahu-1.fan_speed_pct", 101.0)  # the device checks the range
    with pytest.raises(BacnetRefusal, match="value-out-of-range"):
        await client.write("hp-1.mode", 4)
    assert plant.commands == []


async def test_a_device_that_does_not_answer_gives_a_device_error() -> None:
    silent = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)  # bound, never answers
    silent.bind(("127.0.0.1", 0))
    try:
        port = silent.getsockname()[1]
        async with BacnetClient(BAS, port=port, timeout_s=0.3) as c:
            with pytest.raises(DeviceError, match=r"did not answer .* within 0.3 s"):
                await c.read("ahu-1.fan_kw")
            with pytest.raises(DeviceError, match="did not answer"):
                await c.read_many(["ahu-1.fan_kw", "hp-1.cop"])
            with pytest.raises(DeviceError, match="did not answer"):
                await c.write("ahu-1.fan_speed_pct", 40.0)
    finally:
        silent.close()


async def test_a_taken_port_is_a_device_error_that_says_what_to_do(plant: Plant) -> None:
    async with BacnetServer(BAS, values=plant.read, command=plant.command, port=0) as first:
        second = BacnetServer(BAS, values=plant.read, command=plant.command, port=first.port)
        with pytest.raises(DeviceError, match="pick another port"):
            await second.start()


async def test_an_unstarted_client_says_how_to_start_it() -> None:
    with pytest.raises(DeviceError, match="not started"):
        await BacnetClient(BAS).read("ahu-1.fan_kw")


@pytest.mark.parametrize(
    ("oid", "prop", "kind", "value", "refusal"),
    [
        (("analog-value", 7), "present-value", CharacterString, "hot", "invalid-tag"),
        (("analog-value", 7), "present-value", Null, (), "invalid-tag"),
        (("analog-value", 7), "present-value", Unsigned, 20, "invalid-tag"),
        (("binary-value", 0), "present-value", Real, 1.0, "invalid-tag"),
        (("binary-value", 0), "present-value", Enumerated, 7, "invalid-data-type"),
        (("analog-value", 7), "object-name", CharacterString, "x", "write-access-denied"),
        (("analog-value", 7), "out-of-service", Boolean, True, "write-access-denied"),
    ],
)
async def test_a_write_of_the_wrong_type_or_property_is_refused_and_changes_nothing(
    plant: Plant,
    served: BacnetServer,
    client: BacnetClient,
    audit: AuditLog,
    oid: tuple[str, int],
    prop: str,
    kind: Any,
    value: Any,
    refusal: str,
) -> None:
    """Sent as raw requests: bacpypes3's own client would not encode them."""
    before = dict(plant.values)
    request = WritePropertyRequest(
        objectIdentifier=ObjectIdentifier(oid),
        propertyIdentifier=prop,
        propertyValue=AnyValue(kind(value)),
        destination=Address(f"127.0.0.1:{served.port}"),
    )
    with pytest.raises(ErrorRejectAbortNack) as refused:
        await client._started().request(request)
    answer = refused.value
    assert str(getattr(answer, "errorCode", None) or answer.apduAbortRejectReason) == refusal
    assert plant.commands == [] and plant.values == before
    assert [r.action for r in audit.records()] == ["bas.write.refused"]
    name = await client.read_property("ahu-1.space_temp_setpoint_c", "object-name")
    assert str(name) == "ahu-1.space_temp_setpoint_c"


async def test_write_property_multiple_is_rejected(
    plant: Plant, served: BacnetServer, client: BacnetClient
) -> None:
    spec = WriteAccessSpecification(
        objectIdentifier=ObjectIdentifier(("analog-value", 7)),
        listOfProperties=[
            PropertyValue(propertyIdentifier="present-value", value=AnyValue(Real(22.0)))
        ],
    )
    request = WritePropertyMultipleRequest(
        listOfWriteAccessSpecs=[spec], destination=Address(f"127.0.0.1:{served.port}")
    )
    with pytest.raises(ErrorRejectAbortNack) as refused:
        await client._started().request(request)
    assert str(refused.value.apduAbortRejectReason) == "unrecognized-service"
    assert plant.commands == []


async def test_malformed_datagrams_change_nothing_and_the_device_keeps_serving(
    plant: Plant, served: BacnetServer, client: BacnetClient
) -> None:
    before = dict(plant.values)
    junk = [
        b"",
        b"\x81",
        b"\x81\x0a\x00\x04",  # a BVLC header and no NPDU
        b"\x81\x0a\xff\xff" + bytes(range(60)),  # a length it does not have
        b"\x81\x0a\x00\x08\x01\x04\x00\x05",  # a confirmed request cut short
        bytes(range(256)) * 5,
    ]
    junk += [b"\x81\x0a\x00\x20" + bytes((i * 37 + j) % 256 for j in range(28)) for i in range(200)]
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        for payload in junk:
            sock.sendto(payload, ("127.0.0.1", served.port))
    finally:
        sock.close()
    assert await client.read("ahu-1.fan_kw") == before["ahu-1.fan_kw"]
    assert plant.commands == [] and plant.values == before


async def test_a_relinquish_returns_the_point_to_the_plant(
    plant: Plant, served: BacnetServer, client: BacnetClient, audit: AuditLog
) -> None:
    await client.relinquish("hp-1.mode")
    assert [(n, math.isnan(v)) for n, v in plant.commands] == [("hp-1.mode", True)]
    with pytest.raises(BacnetRefusal, match="value-out-of-range"):
        await client.relinquish("ahu-1.space_temp_setpoint_c")  # the plant has no automatic
    assert served.writes[-1].reason == "ahu-1.space_temp_setpoint_c cannot be relinquished"
    with pytest.raises(CommandError, match="read-only"):
        await client.relinquish("ahu-1.fan_kw")
    with pytest.raises(CommandError, match=r"priority is 1 \.\. 16"):
        await client.relinquish("hp-1.mode", priority=17)
    assert [(r.action, r.detail.get("relinquish")) for r in audit.records()] == [
        ("bas.write", True),
        ("bas.write.refused", True),
    ]


async def test_a_bas_without_relinquish_refuses_it(plant: Plant) -> None:
    server = BacnetServer(BAS, values=plant.read, command=plant.command, port=0)
    async with server, BacnetClient(BAS, port=await server.start()) as c:
        with pytest.raises(BacnetRefusal, match="value-out-of-range"):
            await c.relinquish("hp-1.mode")
    assert plant.commands == []
    assert (
        server.writes[-1].reason == "hp-1.mode: this BAS takes no relinquish (null); write a value"
    )


class _LossyLink(asyncio.DatagramProtocol):
    """A UDP relay between one client and the server that loses the first ``lose`` requests."""

    def __init__(self, server_port: int, lose: int) -> None:
        self.server = ("127.0.0.1", server_port)
        self.lose, self.lost = lose, 0
        self.client: tuple[str, int] | None = None
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        assert self.transport is not None
        if addr == self.server:
            if self.client is not None:
                self.transport.sendto(data, self.client)
            return
        self.client = addr
        if self.lost < self.lose:
            self.lost += 1
            return
        self.transport.sendto(data, self.server)


async def test_a_lost_request_is_sent_again(plant: Plant, served: BacnetServer) -> None:
    loop = asyncio.get_running_loop()
    transport, link = await loop.create_datagram_endpoint(
        lambda: _LossyLink(served.port, lose=2), local_addr=("127.0.0.1", 0)
    )
    try:
        port = transport.get_extra_info("sockname")[1]
        async with BacnetClient(BAS, port=port, timeout_s=1.5) as c:
            assert await c.read("ahu-1.fan_speed_pct") == plant.values["ahu-1.fan_speed_pct"]
        assert link.lost == 2  # the first try and the first retry lost, the last answered
    finally:
        transport.close()
