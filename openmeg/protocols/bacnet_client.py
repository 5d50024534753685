"""An async BACnet/IP client of a premises' BAS: read one point (ReadProperty), many points
(ReadPropertyMultiple) and write one (WriteProperty), by ``<equipment>.<point>``."""

from __future__ import annotations

import asyncio
import math
from collections.abc import Sequence
from typing import Any

from bacpypes3.apdu import ErrorRejectAbortNack
from bacpypes3.pdu import Address
from bacpypes3.primitivedata import Null, ObjectIdentifier

from openmeg.core.building_automation import BasPoint, BasSystem
from openmeg.core.errors import CommandError, DeviceError
from openmeg.protocols.bacnet_stack import Node, bound_socket, device_object

CLIENT_INSTANCE = 4194300
"""The client's own device instance (one below the highest a device may take)."""
RETRIES = 2
"""Times a request is sent again when no answer came (a datagram may be lost)."""


def attempt_ms(timeout_s: float) -> int:
    """Each attempt's wait [ms] so that the first and the retries take ``timeout_s`` in all."""
    return max(1, round(timeout_s * 1000 / (RETRIES + 1)))


class BacnetRefusal(CommandError):
    """A write the BACnet device refused; ``code`` is its BACnet error code."""

    def __init__(self, message: str, *, code: str) -> None:
        super().__init__(message)
        self.code = code


class BacnetClient:
    """A client of ``bas`` at ``host:port`` (defaults: the BAS's own); a request unanswered is
    sent again ``RETRIES`` times and gives up after ``timeout_s`` in all with ``DeviceError``;
    a refused write raises ``BacnetRefusal``."""

    def __init__(
        self,
        bas: BasSystem,
        *,
        host: str | None = None,
        port: int | None = None,
        timeout_s: float = 2.0,
        local_host: str = "127.0.0.1",
        instance: int = CLIENT_INSTANCE,
    ) -> None:
        if not (math.isfinite(timeout_s) and 0 < timeout_s <= 60):
            raise ValueError(f"timeout_s is 0 .. 60 s, not {timeout_s}")
        self.bas, self.timeout_s = bas, timeout_s
        self.address = f"{bas.host if host is None else host}:{bas.port if port is None else port}"
        self._local, self._instance = local_host, instance
        self._points = {f"{e.id}.{p.name}": (p, i) for e, p, i in bas.objects()}
        self._node: Node | None = None

    async def start(self) -> None:
        """Open the client's socket (a free port on ``local_host``)."""
        if self._node is None:
            device = device_object(
                self._instance,
                "openmeg",
                apdu_timeout_ms=attempt_ms(self.timeout_s),
                retries=RETRIES,
            )
            self._node = Node(device, bound_socket(self._local, 0))
            await self._node.ready()

    async def stop(self) -> None:
        """Close the socket."""
        if self._node is not None:
            self._node.close()
            self._node = None
            await asyncio.sleep(0)

    async def __aenter__(self) -> BacnetClient:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    def _object(self, name: str) -> tuple[BasPoint, ObjectIdentifier]:
        try:
            point, instance = self._points[name]
        except KeyError:
            raise CommandError(
                f"the BAS {self.bas.id} has no point {name!r}: points are <equipment>.<point>"
            ) from None
        return point, ObjectIdentifier((point.object_type.value, instance))

    def _started(self) -> Node:
        if self._node is None:
            raise DeviceError("the BACnet client is not started: `async with BacnetClient(...)`")
        return self._node

    async def _ask(self, what: str, call: Any, *, write: bool = False) -> Any:
        silent = DeviceError(
            f"BACnet device {self.address} did not answer {what} within {self.timeout_s:g} s: "
            "is the BAS on and its address right?"
        )
        try:
            answer = await asyncio.wait_for(call, self.timeout_s + 1.0)
        except TimeoutError as err:
            raise silent from err
        except ErrorRejectAbortNack as err:
            answer = err
        if isinstance(answer, ErrorRejectAbortNack) and _why(answer) == "no-response":
            raise silent
        if isinstance(answer, ErrorRejectAbortNack):
            message = f"BACnet device {self.address} refused {what}: {_why(answer)}"
            if write:
                raise BacnetRefusal(message, code=_why(answer))
            raise DeviceError(message)
        return answer

    async def read_property(self, name: str, prop: str = "present-value") -> Any:
        """Property ``prop`` of point ``name``'s object, as bacpypes3 decodes it."""
        _, oid = self._object(name)
        call = self._started().read_property(Address(self.address), oid, prop)
        return await self._ask(f"read of {name} {prop}", call)

    async def read(self, name: str) -> float:
        """The present value of point ``name`` (binary: 0 or 1; multi-state: 1, 2, ...)."""
        point, _ = self._object(name)
        return as_float(point, await self.read_property(name))

    async def read_many(self, names: Sequence[str]) -> dict[str, float]:
        """The present values of ``names``, in one ReadPropertyMultiple."""
        objects = [self._object(n) for n in names]
        args: list[Any] = []
        for _, oid in objects:
            args += [oid, ["present-value"]]
        call = self._started().read_property_multiple(Address(self.address), args)
        answer = await self._ask(f"read of {len(names)} points", call)
        out: dict[str, float] = {}
        for (_oid, _prop, _index, value), name, (point, _) in zip(
            answer, names, objects, strict=True
        ):
            if isinstance(value, ErrorRejectAbortNack):
                raise DeviceError(f"BACnet device {self.address} refused {name}: {_why(value)}")
            out[name] = as_float(point, value)
        return out

    async def write(self, name: str, value: float) -> None:
        """Write ``value`` to point ``name``'s present value; ``CommandError`` if it is not a
        writable point, not finite or (a binary or multi-state point) not a whole number,
        ``BacnetRefusal`` (a ``CommandError``) if the device refused it (its range is the
        device's to check), ``DeviceError`` if it did not answer."""
        point, oid = self._object(name)
        if not point.writable:
            raise CommandError(f"{name} is read-only")
        if not math.isfinite(value):
            raise CommandError(f"{name} takes a finite number, not {value}")
        if (point.binary or point.states) and value != round(value):
            raise CommandError(f"{name} takes a whole state number, not {value}")
        if point.binary and value not in (0, 1):
            raise CommandError(f"{name} takes 0 (inactive) or 1 (active), not {value:g}")
        wire: Any = value
        if point.binary:
            wire = "active" if value == 1 else "inactive"
        elif point.states:
            wire = round(value)
        call = self._started().write_property(Address(self.address), oid, "present-value", wire)
        await self._ask(f"write of {name} = {value:g}", call, write=True)

    async def relinquish(self, name: str, *, priority: int = 16) -> None:
        """Relinquish point ``name`` (null at ``priority``): the device takes it back to
        automatic; ``BacnetRefusal`` if it refused, ``DeviceError`` if it did not answer."""
        point, oid = self._object(name)
        if not point.writable:
            raise CommandError(f"{name} is read-only")
        if not 1 <= priority <= 16:
            raise CommandError(f"a BACnet priority is 1 .. 16, not {priority}")
        call = self._started().write_property(
            Address(self.address), oid, "present-value", Null(()), priority=priority
        )
        await self._ask(f"relinquish of {name}", call, write=True)


def _why(answer: Any) -> str:
    for attr in ("errorCode", "apduAbortRejectReason", "reason"):
        code = getattr(answer, attr, None)
        if code is not None:
            return str(code)
    return type(answer).__name__


def as_float(point: BasPoint, value: Any) -> float:
    """A present value as a number (binary: 1.0 active, 0.0 inactive)."""
    if point.binary:
        return 1.0 if str(value) == "active" else 0.0
    return float(value)
