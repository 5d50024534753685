"""The provisioning system's relay to the premises' BAS over BACnet/IP: one client per BAS."""

from __future__ import annotations

import logging
from collections.abc import Mapping

from openmeg.core.errors import DeviceError
from openmeg.core.site import Site
from openmeg.customer.device_discovery import (
    FoundDevice,
    browse_mdns,
    merged,
    scan_bas,
    scan_sunspec,
)
from openmeg.customer.provisioning import Discover
from openmeg.protocols.bacnet_client import BacnetClient

log = logging.getLogger("openmeg.provisioning")


class BacnetGateway:
    """Reads (ReadPropertyMultiple) and writes (WriteProperty) points of each BAS by its id."""

    def __init__(self, clients: Mapping[str, BacnetClient]) -> None:
        self.clients = dict(clients)

    def _client(self, bas: str) -> BacnetClient:
        client = self.clients.get(bas)
        if client is None:
            raise DeviceError(f"no BACnet client for the BAS {bas!r}: it is not on this premises")
        return client

    async def read(self, bas: str, names: list[str]) -> dict[str, float]:
        """The present values of ``names`` of the BAS ``bas``."""
        return await self._client(bas).read_many(names)

    async def write(self, bas: str, name: str, value: float) -> None:
        """Write ``value`` to the point ``name`` of the BAS ``bas``."""
        await self._client(bas).write(name, value)


def premises_clients(site: Site, premises: str) -> dict[str, BacnetClient]:
    """A BACnet client (not started) for each BAS of ``premises`` in the site file."""
    return {b.id: BacnetClient(b) for b in site.bas if b.premises == premises}


def premises_discovery(
    site: Site, premises: str, gateway: BacnetGateway, *, mdns: bool = True
) -> Discover:
    """Discovery of ``premises``' devices: DNS-SD over mDNS, a BACnet scan of its BAS and a
    SunSpec scan of the Modbus addresses of the devices it owns; a scan that finds nothing
    is logged, not fatal."""

    async def discover() -> list[FoundDevice]:
        found: list[list[FoundDevice]] = []
        if mdns:
            found.append(await browse_mdns())
        systems = [b for b in site.bas if b.premises == premises]
        try:
            found.append(await scan_bas(systems, gateway.read) if systems else [])
        except DeviceError as err:
            log.warning("the BAS scan of %s found nothing: %s", premises, err)
        owned = [
            (d.id, getattr(d, "address", None))
            for d in site.devices
            if getattr(d, "owner", None) == premises
        ]
        found.append(await scan_sunspec([(n, a) for n, a in owned if a is not None]))
        return merged(*found)

    return discover
