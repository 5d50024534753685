"""Device discovery: DNS-SD over mDNS on 127.0.0.1, the BAS scan, and UUIDv5 ids."""

from __future__ import annotations

import socket
import uuid

import pytest
from zeroconf import IPVersion
from zeroconf.asyncio import AsyncServiceInfo, AsyncZeroconf

from openmeg.core.building_automation import BasEquipment, BasSystem
from openmeg.core.errors import DeviceError
from openmeg.customer.device_discovery import (
    NAMESPACE,
    SERVICE_TYPE,
    FoundDevice,
    browse_mdns,
    device_uuid,
    merged,
    scan_bas,
)

BAS = BasSystem(
    id="bas-t",
    premises="office",
    port=47900,
    device_instance=7,
    equipment=(
        BasEquipment(id="ahu-1", kind="ahu", serial="HB-AHU-0001"),
        BasEquipment(id="hp-1", kind="heat_pump", serial="HB-HP-0001"),
        BasEquipment(id="fire-1", kind="fire_alarm", serial=""),
    ),
)


def test_device_ids_are_uuid5_of_the_serial_and_stable() -> None:
    a = device_uuid(serial="HB-AHU-0001")
    assert a == str(uuid.uuid5(NAMESPACE, "serial:HB-AHU-0001"))
    assert uuid.UUID(a).version == 5
    assert device_uuid(serial=" HB-AHU-0001 ") == a
    assert device_uuid(serial="HB-AHU-0002") != a
    fp = "ab" * 32
    assert device_uuid(certificate_fingerprint=fp.upper()) == str(
        uuid.uuid5(NAMESPACE, f"cert:{fp}")
    )
    with pytest.raises(DeviceError, match="no stable id"):
        device_uuid()


async def test_bas_scan_names_each_answering_equipment_with_a_serial() -> None:
    asked: list[list[str]] = []

    async def read(bas: str, names: list[str]) -> dict[str, float]:
        asked.append(names)
        return {n: 1.0 for n in names if not n.startswith("hp-1")}

    found = await scan_bas([BAS], read)
    assert asked == [["ahu-1.fan_on", "hp-1.mode", "fire-1.alarm"]]
    assert [(d.equipment, d.kind, d.protocol, d.port) for d in found] == [
        ("ahu-1", "ahu", "bacnet", 47900)
    ]
    assert found[0].id == device_uuid(serial="HB-AHU-0001")
    assert found[0].public() == {"id": found[0].id, "kind": "ahu", "name": "ahu-1"}


async def test_bas_scan_with_no_answer_says_so() -> None:
    async def read(bas: str, names: list[str]) -> dict[str, float]:
        raise DeviceError("timed out")

    with pytest.raises(DeviceError, match="no BAS answered: bas-t: timed out"):
        await scan_bas([BAS], read)


async def test_mdns_finds_a_device_announced_on_loopback() -> None:
    tag = uuid.uuid4().hex[:8]
    zc = AsyncZeroconf(interfaces=["127.0.0.1"], ip_version=IPVersion.V4Only)
    good = AsyncServiceInfo(
        SERVICE_TYPE,
        f"light-{tag}.{SERVICE_TYPE}",
        addresses=[socket.inet_aton("127.0.0.1")],
        port=47808,
        properties={"kind": "lighting_zone", "serial": f"LZ-{tag}", "name": "Garage"},
        server=f"dev-{tag}.local.",
    )
    nameless = AsyncServiceInfo(
        SERVICE_TYPE,
        f"anon-{tag}.{SERVICE_TYPE}",
        addresses=[socket.inet_aton("127.0.0.1")],
        port=47808,
        properties={"kind": "lighting_zone"},
        server=f"anon-{tag}.local.",
    )
    await zc.async_register_service(good)
    await zc.async_register_service(nameless)
    try:
        found = [d for d in await browse_mdns() if tag in d.serial or tag in d.name]
    finally:
        await zc.async_unregister_all_services()
        await zc.async_close()
    assert [(d.kind, d.serial, d.name, d.host, d.port, d.protocol) for d in found] == [
        ("lighting_zone", f"LZ-{tag}", "Garage", "127.0.0.1", 47808, "mdns")
    ]
    assert found[0].id == device_uuid(serial=f"LZ-{tag}")


def test_a_scanned_device_wins_over_its_mdns_announcement() -> None:
    common = {"kind": "ahu", "name": "AHU", "serial": "S1", "host": "127.0.0.1", "port": 1}
    m = FoundDevice(id=device_uuid(serial="S1"), protocol="mdns", **common)  # type: ignore[arg-type]
    b = FoundDevice(id=m.id, protocol="bacnet", bas="b", equipment="ahu-1", **common)  # type: ignore[arg-type]
    assert merged([m], [b]) == [b]
    assert merged([b], [m]) == [b]
