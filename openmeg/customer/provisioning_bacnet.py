"""The provisioning system's relay to the premises' BAS over BACnet/IP: one client per BAS."""

from __future__ import annotations

from collections.abc import Mapping

from openmeg.core.errors import DeviceError
from openmeg.protocols.bacnet_client import BacnetClient


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
