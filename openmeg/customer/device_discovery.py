"""Finding the customer energy devices on the premises network (Y.2071 III.3 step 4): DNS-SD over
mDNS, a scan of the premises' BAS over BACnet and a SunSpec scan of the site's Modbus addresses;
each device gets a stable unique id, a UUIDv5 of its serial number (or its certificate)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Literal

from zeroconf import IPVersion, ServiceListener, Zeroconf
from zeroconf.asyncio import AsyncServiceBrowser, AsyncServiceInfo, AsyncZeroconf

from openmeg.core.addresses import ModbusAddress
from openmeg.core.building_automation import POINTS, BasSystem
from openmeg.core.errors import DeviceError
from openmeg.distribution.discovery import discover
from openmeg.protocols.modbus import ModbusMaster

SERVICE_TYPE = "_openmeg-device._tcp.local."
"""The DNS-SD type premises devices announce (TXT: kind, serial, name, protocol)."""
NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "https://openmeg.org/ns/device")
"""The UUIDv5 namespace of device ids."""
SUNSPEC_KINDS = {"inverter": "pv", "storage": "battery"}
"""The device kind of a SunSpec family (others keep their family's name)."""

BasReader = Callable[[str, list[str]], Awaitable[dict[str, float]]]
"""Reads ``<equipment>.<point>`` names from the BAS of that id (BACnet ReadPropertyMultiple)."""


def device_uuid(*, serial: str = "", certificate_fingerprint: str = "") -> str:
    """The device's stable id: UUIDv5 of ``serial:<serial>``, else ``cert:<fingerprint>``."""
    if serial.strip():
        return str(uuid.uuid5(NAMESPACE, f"serial:{serial.strip()}"))
    if certificate_fingerprint:
        return str(uuid.uuid5(NAMESPACE, f"cert:{certificate_fingerprint.lower()}"))
    raise DeviceError("a device without a serial number or certificate has no stable id")


@dataclass(frozen=True, kw_only=True, slots=True)
class FoundDevice:
    """A device found on the premises network and how to reach it."""

    id: str
    kind: str
    name: str
    serial: str
    protocol: Literal["bacnet", "sunspec", "mdns"]
    host: str
    port: int
    bas: str = ""
    equipment: str = ""
    unit: int = 0

    def public(self) -> dict[str, str]:
        """What a provider is told of it: id, kind and name (never its address)."""
        return {"id": self.id, "kind": self.kind, "name": self.name}


class _Names(ServiceListener):
    def __init__(self) -> None:
        self.names: set[str] = set()

    def add_service(self, zc: Zeroconf, type_: str, name: str) -> None:
        self.names.add(name)

    def update_service(self, zc: Zeroconf, type_: str, name: str) -> None:
        self.names.add(name)

    def remove_service(self, zc: Zeroconf, type_: str, name: str) -> None:
        self.names.discard(name)


def _txt(info: AsyncServiceInfo, key: str) -> str:
    raw = info.properties.get(key.encode())
    return raw.decode("utf-8", "replace") if isinstance(raw, bytes) else ""


async def browse_mdns(
    *, interfaces: Sequence[str] = ("127.0.0.1",), wait_s: float = 1.5
) -> list[FoundDevice]:
    """The devices announcing ``SERVICE_TYPE`` on ``interfaces``; one without a serial number
    or of an unknown kind is left out."""
    azc = AsyncZeroconf(interfaces=list(interfaces), ip_version=IPVersion.V4Only)
    listener = _Names()
    browser = AsyncServiceBrowser(azc.zeroconf, SERVICE_TYPE, listener=listener)
    found: list[FoundDevice] = []
    try:
        await asyncio.sleep(wait_s)
        for name in sorted(listener.names):
            info = AsyncServiceInfo(SERVICE_TYPE, name)
            if not await info.async_request(azc.zeroconf, 1500):
                continue
            kind, serial = _txt(info, "kind"), _txt(info, "serial")
            addresses = info.parsed_addresses()
            if kind not in (*POINTS, "pv", "battery") or not serial or not addresses:
                continue
            found.append(
                FoundDevice(
                    id=device_uuid(serial=serial),
                    kind=kind,
                    name=_txt(info, "name") or name.removesuffix("." + SERVICE_TYPE),
                    serial=serial,
                    protocol="mdns",
                    host=addresses[0],
                    port=info.port or 0,
                    bas=_txt(info, "bas"),
                    equipment=_txt(info, "equipment"),
                )
            )
    finally:
        await browser.async_cancel()
        await azc.async_close()
    return found


async def scan_bas(systems: Sequence[BasSystem], read: BasReader) -> list[FoundDevice]:
    """Each piece of equipment of ``systems`` that answers a read of its points; a BAS that
    does not answer is left out (``DeviceError`` if none does)."""
    found: list[FoundDevice] = []
    errors: list[str] = []
    for bas in systems:
        names = [f"{e.id}.{p.name}" for e in bas.equipment for p in POINTS[e.kind][:1]]
        try:
            values = await read(bas.id, names)
        except DeviceError as err:
            errors.append(f"{bas.id}: {err}")
            continue
        for e in bas.equipment:
            if f"{e.id}.{POINTS[e.kind][0].name}" in values and e.serial:
                found.append(
                    FoundDevice(
                        id=device_uuid(serial=e.serial),
                        kind=e.kind,
                        name=e.name or e.id,
                        serial=e.serial,
                        protocol="bacnet",
                        host=bas.host,
                        port=bas.port,
                        bas=bas.id,
                        equipment=e.id,
                    )
                )
    if errors and not found:
        raise DeviceError("no BAS answered: " + "; ".join(errors))
    return found


async def scan_sunspec(addresses: Sequence[tuple[str, ModbusAddress]]) -> list[FoundDevice]:
    """The SunSpec devices that answer at ``addresses`` (name, address), by their serial."""
    found: list[FoundDevice] = []
    for label, a in addresses:
        master = ModbusMaster(a.host, a.port, a.unit)
        try:
            d = await discover(master)
        except DeviceError:
            continue
        finally:
            master.close()
        serial = d.map.raw(1, "SN") if d.map.serves(1) else None
        if not serial:
            continue
        found.append(
            FoundDevice(
                id=device_uuid(serial=str(serial)),
                kind=SUNSPEC_KINDS.get(d.family, d.family),
                name=label,
                serial=str(serial),
                protocol="sunspec",
                host=a.host,
                port=a.port,
                unit=a.unit,
            )
        )
    return found


def merged(*lists: Sequence[FoundDevice]) -> list[FoundDevice]:
    """One entry per device id: a scan's (which knows how to reach it) before an mDNS one."""
    out: dict[str, FoundDevice] = {}
    for d in (d for ds in lists for d in ds):
        if d.id not in out or out[d.id].protocol == "mdns":
            out[d.id] = d
    return sorted(out.values(), key=lambda d: (d.kind, d.name, d.id))
