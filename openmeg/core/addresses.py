"""Where a device answers on the wire: the one description both programs use.

A site file gives it as ``address: {host, port, unit, models}``; the simulated field serves the
device there, the platform's DER data feeder connects to it there.
"""

from __future__ import annotations

import ipaddress
import re

from pydantic import BaseModel, ConfigDict, Field, field_validator

_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9\-]{0,61}[A-Za-z0-9])?"
HOST_NAME = re.compile(rf"^{_LABEL}(?:\.{_LABEL})*$")
HOST_PATTERN = rf"^(?:{_LABEL}(?:\.{_LABEL})*|[0-9A-Fa-f:.]*:[0-9A-Fa-f:.]*)$"
"""Host names and IP addresses (a superset: the loader also rejects e.g. ``300.1.1.1``)."""
MODBUS_PORT = 502
UNIT_MAX = 247


def check_host(host: str) -> str:
    """``host`` if it is an IP address or a host name (RFC 1123), else ``ValueError``."""
    try:
        ipaddress.ip_address(host)
    except ValueError:
        all_numeric = all(part.isdigit() for part in host.split("."))
        if len(host) <= 253 and HOST_NAME.match(host) and not all_numeric:
            return host
        raise ValueError(
            f"host {host!r} is neither an IP address nor a host name: "
            "give e.g. 192.168.1.21 or inverter-1.local"
        ) from None
    return host


class ModbusAddress(BaseModel):
    """Where a device answers Modbus TCP, and the SunSpec models it is expected to serve."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    host: str = Field(
        description="IP address or host name of the device (or of its Modbus gateway)",
        json_schema_extra={"pattern": HOST_PATTERN},
    )
    port: int = Field(MODBUS_PORT, ge=1, le=65535, description="Modbus TCP port (1..65535)")
    unit: int = Field(
        1, ge=0, le=UNIT_MAX, description="Modbus unit id (0..247), one per device behind a gateway"
    )
    models: tuple[int, ...] = Field(
        (),
        description=(
            "SunSpec model ids the device is expected to serve, e.g. [1, 103, 123]; the platform "
            "raises an alarm when discovery finds others (empty: no expectation)"
        ),
        json_schema_extra={"uniqueItems": True},
    )

    @field_validator("host")
    @classmethod
    def _host(cls, v: str) -> str:
        return check_host(v)

    @field_validator("models")
    @classmethod
    def _models(cls, v: tuple[int, ...]) -> tuple[int, ...]:
        bad = [m for m in v if not 1 <= m <= 65534]
        if bad:
            raise ValueError(f"SunSpec model ids lie in 1..65534 (got {bad[0]})")
        if len(set(v)) != len(v):
            raise ValueError("list each SunSpec model once")
        return v

    def __str__(self) -> str:
        return f"{self.host}:{self.port}:{self.unit}"


class DeviceAddress(ModbusAddress):
    """Device ``id`` answers Modbus TCP at ``host:port``, unit id ``unit``."""

    id: str = Field(description="the device's id in the site file")
