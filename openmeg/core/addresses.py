"""Where a device answers on the wire: the one description both programs use."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, kw_only=True, slots=True)
class DeviceAddress:
    """Device ``id`` answers Modbus TCP at ``host:port``, unit id ``unit``."""

    id: str
    host: str
    port: int
    unit: int = 1

    def __str__(self) -> str:
        return f"{self.host}:{self.port}:{self.unit}"
