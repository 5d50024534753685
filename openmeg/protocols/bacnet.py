"""BACnet/IP (ASHRAE 135 Annex J) adapter on bacpypes3: a premises' BAS served as one BACnet
device (``BacnetServer``); ``BacnetClient`` (in ``bacnet_client``) reads and writes it.

Each point of ``core.building_automation`` is one object: object-name ``<equipment>.<point>``,
present-value live from a callable, units, status-flags and out-of-service. A WriteProperty of
a writable point's present-value is checked (finite, in the point's range, a known state) and
handed to the command callback; anything else is refused with a BACnet error and changes
nothing. BACnet/IP itself authenticates no one: serve it only on the building's own network.
"""

from __future__ import annotations

import asyncio
import math
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from bacpypes3.errors import ExecutionError

from openmeg.core.audit import AuditLog
from openmeg.core.building_automation import BasPoint, BasSystem
from openmeg.core.errors import CommandError
from openmeg.protocols.bacnet_objects import as_number, live_object
from openmeg.protocols.bacnet_stack import WRITING, Node, bound_socket, device_object

__all__ = ["BacnetServer", "WriteRecord", "as_number"]


@dataclass(frozen=True, kw_only=True)
class WriteRecord:
    """One WriteProperty the server took (``error`` empty) or refused (``error`` the BACnet
    error code, ``reason`` why); ``relinquish``: null at a priority, the point to automatic."""

    point: str
    value: float
    source: str
    error: str = ""
    reason: str = ""
    relinquish: bool = False


class BacnetServer:
    """``bas`` as one BACnet/IP device on ``host:port`` (defaults: the BAS's own; port 0: a
    free port, ``port`` tells which once started).

    ``values()`` gives every point's value by ``<equipment>.<point>``; ``command(point, value)``
    applies an accepted write (a ``CommandError`` from it is answered as value-out-of-range);
    ``relinquish(point)``, if given, takes a write of null at a priority (the point back to
    automatic), else that is refused.
    With ``audit`` and ``now``, every write, taken or refused, is appended to the audit log.
    """

    def __init__(
        self,
        bas: BasSystem,
        *,
        values: Callable[[], Mapping[str, float]],
        command: Callable[[str, float], None],
        relinquish: Callable[[str], None] | None = None,
        host: str | None = None,
        port: int | None = None,
        audit: AuditLog | None = None,
        now: Callable[[], datetime] | None = None,
    ) -> None:
        if audit is not None and now is None:
            raise ValueError("an audited BACnet server needs now= (the clock's now)")
        self.bas = bas
        self.host = bas.host if host is None else host
        self.port = bas.port if port is None else port
        self._values, self._command, self._relinquish = values, command, relinquish
        self._audit, self._now = audit, now
        self._points: dict[str, BasPoint] = {f"{e.id}.{p.name}": p for e, p, _ in bas.objects()}
        self._names = {(p.object_type.value, i): f"{e.id}.{p.name}" for e, p, i in bas.objects()}
        self._node: Node | None = None
        self.writes: deque[WriteRecord] = deque(maxlen=1000)
        """The last writes the server took or refused, in order."""

    async def start(self) -> int:
        """Listen; the UDP port bound (``DeviceError`` if it is taken)."""
        if self._node is not None:
            return self.port
        objects = [
            live_object(equipment, point, instance, values=self._values, write=self._write)
            for equipment, point, instance in self.bas.objects()
        ]
        device = device_object(self.bas.device_instance, self.bas.id)
        device.description = f"the BAS of {self.bas.premises}"
        sock = bound_socket(self.host, self.port)
        self.port = int(sock.getsockname()[1])
        self._node = Node(device, sock)
        await self._node.ready()
        self._node.on_write = self._written
        for obj in objects:
            self._node.add_object(obj)
        return self.port

    async def stop(self) -> None:
        """Close the socket."""
        if self._node is not None:
            self._node.close()
            self._node = None
            await asyncio.sleep(0)  # let the transport's close callbacks run

    async def __aenter__(self) -> BacnetServer:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    def check(self, name: str, value: float) -> None:
        """``CommandError`` unless ``value`` may be written to point ``name``."""
        point = self._points.get(name)
        if point is None:
            raise CommandError(f"the BAS {self.bas.id} has no point {name!r}")
        if not point.writable:
            raise CommandError(f"{name} is read-only")
        if not math.isfinite(value):
            raise CommandError(f"{name} takes a finite number, not {value}")
        if not point.low <= value <= point.high:
            raise CommandError(f"{name} = {value} is out of range {point.low:g} .. {point.high:g}")
        if (point.binary or point.states) and value != round(value):
            raise CommandError(f"{name} takes a whole state number, not {value}")

    async def _write(self, name: str, value: float | None, priority: Any) -> None:
        seen = WRITING.get({})
        seen["value"] = math.nan if value is None else value
        try:
            if value is None:
                if self._relinquish is None:
                    raise CommandError(
                        f"{name}: this BAS takes no relinquish (null); write a value"
                    )
                seen["relinquish"] = True
                self._relinquish(name)
            else:
                self.check(name, value)
                self._command(name, value)
        except CommandError as err:
            seen["reason"] = str(err)
            raise ExecutionError(errorClass="property", errorCode="valueOutOfRange") from err

    async def _written(self, apdu: Any, error: str, seen: dict[str, Any]) -> None:
        kind, instance = apdu.objectIdentifier
        target = self._names.get((str(kind), int(instance)), f"{kind},{instance}")
        reason = str(seen.get("reason", error))
        record = WriteRecord(
            point=target,
            value=float(seen.get("value", math.nan)),
            source=str(apdu.pduSource),
            error=error,
            reason=reason if error else "",
            relinquish=bool(seen.get("relinquish")),
        )
        self.writes.append(record)
        if self._audit is None or self._now is None:
            return
        detail: dict[str, Any] = {"value": record.value, "source": record.source}
        if record.relinquish:
            detail["relinquish"] = True
        if error:
            detail["refused"], detail["bacnet_error"] = reason, error
        await asyncio.to_thread(
            self._audit.append,
            ts=self._now(),
            actor=f"bacnet:{record.source}",
            action="bas.write.refused" if error else "bas.write",
            target=f"{self.bas.id}/{target}",
            detail=detail,
        )
