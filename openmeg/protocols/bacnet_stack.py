"""The bacpypes3 BACnet/IP application openmeg's BACnet server and client both run: a normal
(non-BBMD) BACnet/IP node on a UDP socket that openmeg binds itself."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Awaitable, Callable
from contextvars import ContextVar
from typing import Any

from bacpypes3.app import Application
from bacpypes3.appservice import ApplicationServiceAccessPoint
from bacpypes3.comm import bind
from bacpypes3.errors import ExecutionError, RejectException, UnrecognizedService
from bacpypes3.ipv4.link import NormalLinkLayer
from bacpypes3.local.device import DeviceObject
from bacpypes3.netservice import NetworkServiceAccessPoint, NetworkServiceElement
from bacpypes3.pdu import IPv4Address
from bacpypes3.service.device import WhoIsIAmServices
from bacpypes3.service.object import (
    ReadWritePropertyMultipleServices,
    ReadWritePropertyServices,
)

from openmeg.core.errors import DeviceError

VENDOR_NAME = "openmeg"

WILDCARD_INSTANCE = 4194303
"""The device instance that stands for "the device I am talking to"."""

WRITING: ContextVar[dict[str, Any]] = ContextVar("WRITING")
"""What the WriteProperty being served learnt (the number written, why it was refused)."""


def bound_socket(host: str, port: int) -> socket.socket:
    """A UDP socket bound to ``host:port`` (0: a free port); ``DeviceError`` if it is taken."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        sock.bind((host, port))
    except OSError as err:
        sock.close()
        raise DeviceError(
            f"cannot bind BACnet/IP to {host}:{port} ({err.strerror}): pick another port "
            "in the site file's bas section, or stop what holds it"
        ) from err
    sock.setblocking(False)
    return sock


def device_object(
    instance: int, name: str, *, apdu_timeout_ms: int = 3000, retries: int = 3
) -> DeviceObject:
    """The device object of a BACnet node."""
    return DeviceObject(
        objectIdentifier=("device", instance),
        objectName=name,
        vendorName=VENDOR_NAME,
        modelName="openmeg BAS",
        apduTimeout=apdu_timeout_ms,
        numberOfApduRetries=retries,
    )


class Node(
    Application,  # type: ignore[misc]
    WhoIsIAmServices,  # type: ignore[misc]
    ReadWritePropertyServices,  # type: ignore[misc]
    ReadWritePropertyMultipleServices,  # type: ignore[misc]
):
    """A BACnet/IP node on ``sock`` (bacpypes3's normal application, with openmeg's socket)."""

    def __init__(self, device: DeviceObject, sock: socket.socket) -> None:
        host, port = sock.getsockname()
        address = IPv4Address(f"{host}:{port}")
        Application.__init__(self)
        self.asap = ApplicationServiceAccessPoint(device, self.device_info_cache)
        self.nsap = NetworkServiceAccessPoint()
        self.nse = NetworkServiceElement()
        bind(self.nse, self.nsap)
        bind(self, self.asap, self.nsap)
        self.normal = NormalLinkLayer(address, bind_socket=sock)
        self.nsap.bind(self.normal, address=address)
        self.add_object(device)
        self.sock = sock
        self.on_write: Callable[[Any, str, dict[str, Any]], Awaitable[None]] | None = None
        """Called after every WriteProperty with the request, the error code ("" if taken) and
        what ``WRITING`` gathered."""

    async def do_WritePropertyRequest(self, apdu: Any) -> None:
        """Write one property; ``on_write`` hears how it went before the answer is sent."""
        seen: dict[str, Any] = {"request": apdu}
        token = WRITING.set(seen)
        try:
            if self.get_object_id(apdu.objectIdentifier) is self.device_object:
                raise ExecutionError(errorClass="property", errorCode="writeAccessDenied")
            await super().do_WritePropertyRequest(apdu)
        except ExecutionError as err:
            await self._tell(seen, str(err.errorCode))
            raise
        except RejectException as err:  # e.g. a value of the wrong type: invalid-tag
            await self._tell(seen, f"reject:{err.rejectReason}")
            raise
        except Exception:
            await self._tell(seen, "operationalProblem")
            raise
        finally:
            WRITING.reset(token)

    def get_object_id(self, objid: Any) -> Any:
        """The object ``objid`` names; device 4194303 (the wildcard) is this node's device."""
        kind, instance = objid
        if str(kind) == "device" and instance == WILDCARD_INSTANCE:
            return self.device_object
        return super().get_object_id(objid)

    async def response(self, apdu: Any) -> None:
        """Send an answer; a write's acknowledgement only once ``on_write`` has heard of it."""
        seen = WRITING.get(None)
        if seen is not None:
            await self._tell(seen, "")
        await super().response(apdu)

    async def _tell(self, seen: dict[str, Any], error: str) -> None:
        if self.on_write is not None and not seen.get("told"):
            seen["told"] = True
            await self.on_write(seen["request"], error, seen)

    async def do_WritePropertyMultipleRequest(self, apdu: Any) -> None:
        """Not served: one point is written at a time, through WriteProperty."""
        raise UnrecognizedService("write-property-multiple is not served: use write-property")

    async def ready(self, timeout_s: float = 5.0) -> None:
        """Wait until the socket is the link layer's transport (``DeviceError`` after
        ``timeout_s``, the node closed)."""
        try:
            await asyncio.wait_for(self.normal.server._local_transport_ready.wait(), timeout_s)
        except TimeoutError as err:
            host, port = self.sock.getsockname()
            self.close()
            raise DeviceError(
                f"BACnet/IP did not come up on {host}:{port} within {timeout_s:g} s"
            ) from err

    def close(self) -> None:
        """Close the link layer and its socket."""
        self.normal.close()
        if self.normal.server.local_transport is None:
            self.sock.close()

    def __repr__(self) -> str:
        return f"Node({self.sock.getsockname()!r})"
