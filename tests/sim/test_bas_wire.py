"""The simulated field's building automation systems on the wire: every BAS of the demo a
BACnet/IP device on 127.0.0.1, read and written by the platform's BACnet client."""

from __future__ import annotations

import math
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import numpy as np
import pytest

from openmeg.core.clock import SimClock
from openmeg.core.errors import CommandError
from openmeg.core.site import load_site
from openmeg.protocols.bacnet_client import BacnetClient, BacnetRefusal
from openmeg.sim.bas_wire import BasServers
from openmeg.sim.field import Field

SITE = load_site("demo")
T0 = datetime(2026, 1, 14, 9, 0, tzinfo=UTC)


class Building:
    """A test double of a building plant: its points and the commands it took."""

    def __init__(self, offset: float) -> None:
        self.values = {
            "ahu-1.supply_temp_c": 14.5 + offset,
            "ahu-lc.supply_temp_c": 15.25 + offset,
            "ahu-1.space_temp_setpoint_c": 21.0,
            "ahu-lc.space_temp_setpoint_c": 20.5,
        }
        self.commands: list[tuple[str, float]] = []

    def read(self) -> dict[str, float]:
        return dict(self.values)

    def command(self, name: str, value: float) -> None:
        if name.endswith("water_setpoint_c") and value > 50.0:
            raise CommandError(f"{name}: the heat pump's loop is limited to 50 degC")
        self.commands.append((name, value))
        self.values[name] = value

    def relinquish(self, name: str) -> None:
        raise CommandError(f"{name} cannot be relinquished")


@pytest.fixture
def buildings() -> dict[str, Building]:
    return {"bas-office": Building(0.0), "bas-linden": Building(1.0)}


@pytest.fixture
async def wire(buildings: dict[str, Building]) -> AsyncIterator[BasServers]:
    servers = BasServers(SITE, buildings, free_ports=True)
    await servers.start()
    try:
        yield servers
    finally:
        await servers.stop()


def test_every_bas_of_the_site_needs_its_plant() -> None:
    with pytest.raises(ValueError, match="no building plant for the BAS bas-linden"):
        BasServers(SITE, {"bas-office": Building(0.0)})


def test_a_bas_is_served_at_its_site_file_address_unless_free_ports(
    buildings: dict[str, Building],
) -> None:
    plan = BasServers(SITE, buildings).plan
    assert [(w.id, w.premises, w.host, w.port, w.device_instance, w.objects) for w in plan] == [
        ("bas-office", "office", "127.0.0.1", 47808, 1001, 29),
        ("bas-linden", "bldg1", "127.0.0.1", 47809, 1002, 29),
    ]


async def test_each_bas_serves_its_own_building(
    wire: BasServers, buildings: dict[str, Building]
) -> None:
    office, linden = SITE.bas
    ports = {w.id: w.port for w in wire.plan}
    assert len(set(ports.values())) == 2 and 0 not in ports.values()
    async with BacnetClient(office, port=ports["bas-office"]) as c:
        assert await c.read("ahu-1.supply_temp_c") == 14.5
        assert math.isnan(await c.read("hp-1.cop"))  # the plant has no value: fault
        assert list(await c.read_property("hp-1.cop", "status-flags")) == [0, 1, 0, 0]
    async with BacnetClient(linden, port=ports["bas-linden"]) as c:
        assert await c.read("ahu-lc.supply_temp_c") == 16.25


async def test_a_write_changes_the_buildings_setpoint_and_a_refused_one_nothing(
    wire: BasServers, buildings: dict[str, Building]
) -> None:
    linden = SITE.bas[1]
    port = {w.id: w.port for w in wire.plan}["bas-linden"]
    async with BacnetClient(linden, port=port) as c:
        await c.write("ahu-lc.space_temp_setpoint_c", 19.5)
        assert buildings["bas-linden"].values["ahu-lc.space_temp_setpoint_c"] == 19.5
        assert await c.read("ahu-lc.space_temp_setpoint_c") == 19.5
        with pytest.raises(BacnetRefusal, match="value-out-of-range"):
            await c.write("hp-lc.water_setpoint_c", 52.0)  # in the point's range, not the plant's
    assert buildings["bas-linden"].commands == [("ahu-lc.space_temp_setpoint_c", 19.5)]
    assert buildings["bas-office"].commands == []
    status = {s["id"]: (s["writes"], s["refused"]) for s in wire.status()}
    assert status == {"bas-office": (0, 0), "bas-linden": (1, 1)}


async def test_the_field_serves_each_bas_from_its_building_physics() -> None:
    """The field steps each building with the plant, at the weather's outdoor temperature; the
    points read over BACnet are the plant's (as 32-bit REALs); a setpoint written over BACnet
    is the building's setpoint from then on."""
    only = frozenset({"bas-office", "bas-linden"})  # no Modbus device: the BAS alone
    field = Field(SITE, clock=SimClock(T0), step_s=60.0, base_port=0, horizon_h=0.5, only=only)
    await field.start()
    try:
        assert field.plan == []
        field.step()
        office, linden = SITE.bas
        ports = {w.id: w.port for w in field.bas_plan}
        building = field.buildings["bas-office"]
        names = [f"{e.id}.{p.name}" for e, p, _ in office.objects()]
        async with BacnetClient(office, port=ports["bas-office"]) as c:
            got = await c.read_many(names)
            truth = building.read()
            assert got == {n: float(np.float32(truth[n])) for n in names}
            assert truth["hp-1.outdoor_temp_c"] == field.outdoor_temp_c()
            assert truth["ahu-1.fan_on"] == 1.0  # 10:00 in Rome, inside 07:00 .. 19:00
            assert truth["ahu-1.space_temp_setpoint_c"] == 21.0
            await c.write("ahu-1.space_temp_setpoint_c", 23.5)
            with pytest.raises(BacnetRefusal, match="value-out-of-range"):
                await c.write("ahu-1.occupied_to_h", 24.5)
            await c.write("ahu-1.fan_on", 0)  # held off in occupied hours
            field.step()
            assert building.read()["ahu-1.space_temp_setpoint_c"] == 23.5
            assert building.read()["ahu-1.occupied_to_h"] == 19.0
            assert await c.read("ahu-1.space_temp_setpoint_c") == 23.5
            assert (await c.read("ahu-1.fan_on"), await c.read("ahu-1.fan_kw")) == (0.0, 0.0)
            await c.relinquish("ahu-1.fan_on")  # back on its schedule
            field.step()
            assert await c.read("ahu-1.fan_on") == 1.0
            assert await c.read("ahu-1.fan_kw") > 0.0
        async with BacnetClient(linden, port=ports["bas-linden"]) as c:
            assert await c.read("hp-lc.electric_kw") == float(
                np.float32(field.buildings["bas-linden"].read()["hp-lc.electric_kw"])
            )
        status = {s["id"]: (s["writes"], s["refused"]) for s in field.status()["bas"]}
        assert status == {"bas-office": (3, 1), "bas-linden": (0, 0)}
    finally:
        await field.stop()
