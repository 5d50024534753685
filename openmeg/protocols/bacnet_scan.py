"""A scan of one BACnet/IP device: its device object, its object list and each object's name
and description, and from them the equipment of a BAS (id, kind, serial number)."""

from __future__ import annotations

import asyncio
import math
import re
from dataclasses import dataclass
from typing import Any

from bacpypes3.apdu import ErrorRejectAbortNack
from bacpypes3.pdu import Address
from bacpypes3.primitivedata import ObjectIdentifier

from openmeg.core.errors import DeviceError
from openmeg.protocols.bacnet_client import CLIENT_INSTANCE, RETRIES, attempt_ms
from openmeg.protocols.bacnet_stack import (
    WILDCARD_INSTANCE,
    Node,
    bound_socket,
    device_object,
)

_EQUIPMENT = re.compile(r"\((?P<kind>[a-z_]+)(?:, serial (?P<serial>[^)]*))?\)$")
CHUNK = 10
"""Objects per ReadPropertyMultiple (their names and descriptions fit one unsegmented APDU)."""


@dataclass(frozen=True, kw_only=True)
class ScannedObject:
    """One object of a scanned device."""

    object_type: str
    instance: int
    name: str
    description: str


@dataclass(frozen=True, kw_only=True)
class ScannedEquipment:
    """A piece of equipment as the scan found it: its points' objects share the prefix."""

    id: str
    kind: str
    serial: str
    points: tuple[str, ...]


@dataclass(frozen=True, kw_only=True)
class ScannedDevice:
    """What a BACnet device at ``address`` says of itself."""

    address: str
    device_instance: int
    name: str
    vendor: str
    model: str
    objects: tuple[ScannedObject, ...]

    def equipment(self) -> list[ScannedEquipment]:
        """The equipment of a BAS: objects named ``<equipment>.<point>`` whose description
        ends with ``(<kind>[, serial <serial>])``, in the order of the object list."""
        found: dict[str, tuple[str, str, list[str]]] = {}
        for o in self.objects:
            equipment, dot, point = o.name.partition(".")
            match = _EQUIPMENT.search(o.description)
            if not dot or match is None:
                continue
            entry = found.setdefault(equipment, (match["kind"], match["serial"] or "", []))
            entry[2].append(point)
        return [
            ScannedEquipment(id=k, kind=kind, serial=serial, points=tuple(points))
            for k, (kind, serial, points) in found.items()
        ]


async def scan_device(
    host: str, port: int, *, timeout_s: float = 2.0, local_host: str = "127.0.0.1"
) -> ScannedDevice:
    """Scan the BACnet/IP device at ``host:port``; ``DeviceError`` if it does not answer
    within ``timeout_s`` per request or refuses."""
    if not (math.isfinite(timeout_s) and 0 < timeout_s <= 60):
        raise ValueError(f"timeout_s is 0 .. 60 s, not {timeout_s}")
    address = f"{host}:{port}"
    device = device_object(
        CLIENT_INSTANCE - 1,
        "openmeg-scan",
        apdu_timeout_ms=attempt_ms(timeout_s),
        retries=RETRIES,
    )
    node = Node(device, bound_socket(local_host, 0))
    try:
        await node.ready()

        async def ask(what: str, call: Any) -> Any:
            silent = DeviceError(
                f"BACnet device {address} did not answer {what} within {timeout_s:g} s"
            )
            try:
                answer = await asyncio.wait_for(call, timeout_s + 1.0)
            except TimeoutError as err:
                raise silent from err
            except ErrorRejectAbortNack as err:
                answer = err
            if isinstance(answer, ErrorRejectAbortNack) and "no-response" in str(
                getattr(answer, "apduAbortRejectReason", "")
            ):
                raise silent
            if isinstance(answer, ErrorRejectAbortNack):
                raise DeviceError(f"BACnet device {address} refused {what}")
            return answer

        to = Address(address)
        me = ObjectIdentifier(("device", WILDCARD_INSTANCE))
        props = ["object-identifier", "object-name", "vendor-name", "model-name"]
        head = await ask(
            "a read of its device object", node.read_property_multiple(to, [me, props])
        )
        info = {str(p): v for _o, p, _i, v in head if not isinstance(v, ErrorRejectAbortNack)}
        if "object-identifier" not in info:
            raise DeviceError(f"BACnet device {address} did not give its object identifier")
        listed = await ask("a read of its object list", node.read_property(to, me, "object-list"))
        objects: list[ScannedObject] = []
        for start in range(0, len(listed), CHUNK):
            chunk = list(listed[start : start + CHUNK])
            args: list[Any] = []
            for oid in chunk:
                args += [oid, ["object-name", "description"]]
            answer = await ask("a read of its objects", node.read_property_multiple(to, args))
            values: dict[tuple[str, int, str], str] = {}
            for oid, prop, _index, value in answer:
                if not isinstance(value, ErrorRejectAbortNack):
                    values[(str(oid[0]), int(oid[1]), str(prop))] = str(value)
            for oid in chunk:
                kind, instance = str(oid[0]), int(oid[1])
                if kind == "device":
                    continue
                objects.append(
                    ScannedObject(
                        object_type=kind,
                        instance=instance,
                        name=values.get((kind, instance, "object-name"), ""),
                        description=values.get((kind, instance, "description"), ""),
                    )
                )
        return ScannedDevice(
            address=address,
            device_instance=int(info["object-identifier"][1]),
            name=str(info.get("object-name", "")),
            vendor=str(info.get("vendor-name", "")),
            model=str(info.get("model-name", "")),
            objects=tuple(objects),
        )
    finally:
        node.close()
        await asyncio.sleep(0)
