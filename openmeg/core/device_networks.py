"""The address ranges where a site's devices may be added at run time (``site.device_networks``).

An entry is ``NETWORK/PREFIX`` with optional ports: ``10.1.0.0/24``, ``127.0.0.1/32:502``,
``192.168.5.0/24:1502-1510``, ``[fd00::]/64`` is written ``fd00::/64``. Without the setting a site
allows the networks of its own device addresses (each host, ``/32`` or ``/128``) at the ports
``DEFAULT_PORTS``: Modbus (502, 1502) and 10000..65535, above the well-known services
(PostgreSQL 5432, Redis 6379, MySQL 3306, MQTT 1883/8883, HTTP 8000/8080)."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass

IpNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

DEFAULT_PORTS = ((502, 502), (1502, 1502), (10000, 65535))
"""Ports a device may be added at when the site file names no ``device_networks`` [TCP port]."""


@dataclass(frozen=True, kw_only=True)
class DeviceNetwork:
    """One allowed range: a network and its port ranges (inclusive)."""

    network: IpNetwork
    ports: tuple[tuple[int, int], ...] = ((1, 65535),)

    def allows(self, host: ipaddress.IPv4Address | ipaddress.IPv6Address, port: int) -> bool:
        return host in self.network and any(lo <= port <= hi for lo, hi in self.ports)

    def __str__(self) -> str:
        ports = ",".join(str(lo) if lo == hi else f"{lo}-{hi}" for lo, hi in self.ports)
        return f"{self.network}" + ("" if self.ports == ((1, 65535),) else f":{ports}")


def parse_network(text: str) -> DeviceNetwork:
    """``NETWORK/PREFIX[:PORT[-PORT]]`` -> the range; ``ValueError`` says what is accepted."""
    hint = "give NETWORK/PREFIX with optional ports, e.g. 10.1.0.0/24 or 127.0.0.1/32:15020-15100"
    net, slash, rest = text.strip().partition("/")
    if not slash:
        raise ValueError(f"device network {text!r} has no /PREFIX: {hint}")
    prefix, colon, ports_text = rest.partition(":")
    try:
        network = ipaddress.ip_network(f"{net}/{prefix}", strict=True)
    except ValueError as err:
        raise ValueError(f"device network {text!r}: {err}; {hint}") from None
    ports: tuple[tuple[int, int], ...] = ((1, 65535),)
    if colon:
        ports = tuple(_port_range(p, text, hint) for p in ports_text.split(","))
    return DeviceNetwork(network=network, ports=ports)


def _port_range(text: str, entry: str, hint: str) -> tuple[int, int]:
    lo_text, dash, hi_text = text.partition("-")
    try:
        lo = int(lo_text)
        hi = int(hi_text) if dash else lo
    except ValueError:
        raise ValueError(
            f"device network {entry!r}: ports {text!r} are not numbers; {hint}"
        ) from None
    if not 1 <= lo <= hi <= 65535:
        raise ValueError(f"device network {entry!r}: ports are 1..65535, low to high; {hint}")
    return lo, hi


def default_networks(hosts: Iterable[str]) -> tuple[DeviceNetwork, ...]:
    """Each IP host of the site file's addresses, at ``DEFAULT_PORTS`` (names are skipped)."""
    out: dict[IpNetwork, DeviceNetwork] = {}
    for h in hosts:
        try:
            ip = ipaddress.ip_address(h)
        except ValueError:
            continue
        net = ipaddress.ip_network(ip)
        out.setdefault(net, DeviceNetwork(network=net, ports=DEFAULT_PORTS))
    return tuple(out.values())


def refusal(networks: Iterable[DeviceNetwork], host: str, port: int) -> str | None:
    """Why a device may not be added at ``host:port`` (``None``: it may)."""
    allowed = tuple(networks)
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        return f"{host!r} is not an IP address: a device is added by its IP address"
    if any(n.allows(ip, port) for n in allowed):
        return None
    listed = ", ".join(map(str, allowed)) or "none"
    return (
        f"{host}:{port} is outside the networks where this site adds devices ({listed}); "
        "an operator may allow it in the site file (site.device_networks)"
    )
