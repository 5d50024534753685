"""A BAS found on the wire: its device, objects and equipment with their serial numbers."""

from __future__ import annotations

import socket

import pytest
from bacpypes3.apdu import ErrorRejectAbortNack

from openmeg.core.errors import DeviceError
from openmeg.core.site import load_site
from openmeg.protocols.bacnet import BacnetServer
from openmeg.protocols.bacnet_client import BacnetClient
from openmeg.protocols.bacnet_scan import ScannedEquipment, scan_device

SITE = load_site("demo")


async def test_a_scan_finds_the_device_its_objects_and_its_equipment() -> None:
    linden = SITE.bas[1]
    async with BacnetServer(linden, values=dict, command=lambda n, v: None, port=0) as server:
        found = await scan_device("127.0.0.1", server.port)
    assert (found.device_instance, found.name, found.vendor, found.model) == (
        1002,
        "bas-linden",
        "openmeg",
        "openmeg BAS",
    )
    assert [(o.object_type, o.instance, o.name) for o in found.objects] == [
        (p.object_type.value, i, f"{e.id}.{p.name}") for e, p, i in linden.objects()
    ]
    assert (
        found.objects[0].description == "Common areas air handler: fan_on (ahu, serial LC-AHU-0001)"
    )
    equipment = found.equipment()
    assert [(e.id, e.kind, e.serial) for e in equipment] == [
        (e.id, e.kind, e.serial) for e in linden.equipment
    ]
    assert equipment[3] == ScannedEquipment(
        id="light-garage",
        kind="lighting_zone",
        serial="LC-LZ-0002",
        points=("occupied", "level_pct", "lights_kw", "scene"),
    )


async def test_the_device_object_is_read_only() -> None:
    office = SITE.bas[0]
    async with BacnetServer(office, values=dict, command=lambda n, v: None, port=0) as server:
        async with BacnetClient(office, port=server.port) as c:
            node = c._started()
            with pytest.raises(ErrorRejectAbortNack) as refused:
                await node.write_property(
                    f"127.0.0.1:{server.port}", "device,4194303", "object-name", "owned"
                )
            assert str(refused.value.errorCode) == "write-access-denied"
        found = await scan_device("127.0.0.1", server.port)
    assert found.name == "bas-office"
    assert server.writes[-1].error == "writeAccessDenied"


async def test_a_scan_of_nothing_is_a_device_error() -> None:
    silent = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    silent.bind(("127.0.0.1", 0))
    try:
        with pytest.raises(DeviceError, match="did not answer a read of its device object"):
            await scan_device("127.0.0.1", silent.getsockname()[1], timeout_s=0.3)
    finally:
        silent.close()
