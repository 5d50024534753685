"""The whole III.3 flow on the wire: the example provider's management messages change the
setpoints of the simulated building's BAS, served over BACnet/IP by its building plant, and
the premises' devices are found by DNS-SD over mDNS and a BACnet scan."""

from __future__ import annotations

import socket
import uuid
from datetime import UTC, datetime
from pathlib import Path

from zeroconf import IPVersion
from zeroconf.asyncio import AsyncServiceInfo, AsyncZeroconf

from openmeg.core.site import load_site
from openmeg.customer.device_discovery import (
    SERVICE_TYPE,
    FoundDevice,
    browse_mdns,
    device_uuid,
    merged,
    scan_bas,
)
from openmeg.customer.provisioning import key_name
from openmeg.customer.provisioning_bacnet import BacnetGateway
from openmeg.protocols.bacnet import BacnetServer
from openmeg.protocols.bacnet_client import BacnetClient
from openmeg.sim.physics.building import BuildingPlant
from tests.customer.provisioning_world import offer, world


async def test_a_provider_message_changes_a_real_setpoint_of_the_simulated_bas(
    tmp_path: Path,
) -> None:
    bas = next(b for b in load_site("demo").bas if b.id == "bas-office")
    plant = BuildingPlant(bas, timezone="Europe/Rome")
    plant.step(datetime(2026, 7, 1, 23, 0, tzinfo=UTC), 900.0, 28.0)  # night: nobody in
    server = BacnetServer(bas, values=plant.read, command=plant.command, port=0)
    await server.start()
    client = BacnetClient(bas, port=server.port)
    await client.start()
    gateway = BacnetGateway({bas.id: client})
    tag = uuid.uuid4().hex[:8]
    zc = AsyncZeroconf(interfaces=["127.0.0.1"], ip_version=IPVersion.V4Only)
    announced = AsyncServiceInfo(  # the meeting rooms' lighting announces itself too
        SERVICE_TYPE,
        f"light-meeting-{tag}.{SERVICE_TYPE}",
        addresses=[socket.inet_aton("127.0.0.1")],
        port=server.port,
        properties={"kind": "lighting_zone", "serial": "HB-LZ-0002", "name": f"m-{tag}"},
        server=f"lz-{tag}.local.",
    )
    await zc.async_register_service(announced)
    seen: list[list[FoundDevice]] = []

    async def discover() -> list[FoundDevice]:
        mdns = [d for d in await browse_mdns() if d.name == f"m-{tag}"]
        scanned = await scan_bas([bas], gateway.read)
        seen.append(mdns)
        return merged(mdns, scanned)

    try:
        async with world(tmp_path, gateway, discover) as w:
            ad = await w.provider.register(w.advertiser_at, offer(w.provider.endpoint))
            (listed,) = await w.service.provisioning.services(w.advertiser_at)
            assert listed == ad
            sub = await w.service.provisioning.subscribe(listed)
            assert [d.protocol for d in seen[0]] == ["mdns"]
            meeting = device_uuid(serial="HB-LZ-0002")
            assert sub.devices[meeting].protocol == "bacnet"  # the scan knows how to reach it
            theirs = w.provider.subscribers[sub.id].devices
            assert sorted(d["id"] for d in theirs) == sorted(
                device_uuid(serial=s)
                for s in ("HB-AHU-0001", "HB-HP-0001", "HB-LZ-0001", "HB-LZ-0002")
            )
            assert plant.read()["ahu-1.space_temp_setpoint_c"] == 21.0
            answers = await w.provider.optimise(sub.id, [0.10, 0.28, 0.30])
            # pre-cool: the AHU's space setpoint and the heat pump's water setpoint
            assert answers[0] == {
                "id": answers[0]["id"],
                "ok": True,
                "values": {"ahu-1.space_temp_setpoint_c": 20.0},
            }
            assert plant.read()["ahu-1.space_temp_setpoint_c"] == 20.0
            assert answers[1]["values"] == {"hp-1.water_setpoint_c": 7.0}
            assert plant.read()["hp-1.water_setpoint_c"] == 7.0
            answer = await w.provider.send(
                sub.id,
                {
                    "id": "m9",
                    "device": device_uuid(serial="HB-AHU-0001"),
                    "action": "setpoint",
                    "value": 19.5,
                },
            )
            assert answer == {
                "id": "m9",
                "ok": True,
                "values": {"ahu-1.space_temp_setpoint_c": 19.5},
            }
            assert plant.read()["ahu-1.space_temp_setpoint_c"] == 19.5  # the plant's own setpoint
            await w.service.provisioning.unsubscribe(sub.id)
            assert w.keystore.get(key_name(sub.id)) is None and sub.key.wiped
            relayed = [r for r in w.audit.records() if r.action == "provisioning.relayed"]
            assert relayed[-1].detail["point"] == "ahu-1.space_temp_setpoint_c"
            assert relayed[-1].detail["value"] == 19.5
            assert relayed[-1].actor == "comfort-optimiser"
    finally:
        await zc.async_unregister_all_services()
        await zc.async_close()
        await client.stop()
        await server.stop()
