"""The simulated field's building automation systems on the wire: every BAS of the demo a
BACnet/IP device on 127.0.0.1, read and written by the platform's BACnet client."""

from __future__ import annotations

import math
from collections.abc import AsyncIterator

import pytest

from openmeg.core.errors import CommandError
from openmeg.core.site import load_site
from openmeg.protocols.bacnet_client import BacnetClient, BacnetRefusal
from openmeg.sim.bas_wire import BasServers

SITE = load_site("demo")


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
