"""The edge of every service: what arrives on the bus is checked where it arrives, and what is
refused is counted, logged once per kind, alarmed once per service, and the service goes on.

Each service holds a ``Gate`` of the MEG's one ``Edge``: ``admit`` checks a message against its
model again (one built without validation is refused like one from the wire); ``handle`` runs
the service's handler on it, and whatever the handler refuses (``Refused``) or raises is counted
there instead of ending the service.

The alarm (``bus_input_refused``, source: the service) names the topic and the reason of the
first refusal and stays active until the operator acknowledges it: a refusal is an event that
someone must look at, not a condition that ends by itself. Later refusals are counted
(``Edge.counts``, by service and kind; ``LiveMeg.figures``), and the latest reason is kept.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Awaitable, Callable
from typing import Any

from pydantic import ValidationError

from openmeg.core.bus import Bus
from openmeg.core.clock import Clock
from openmeg.core.errors import OpenMegError
from openmeg.core.messages import AlarmMessage, BusMessage, alarm_topic, revalidate

log = logging.getLogger(__name__)

REFUSED_CODE = "bus_input_refused"
"""The code of the alarm a service raises the first time it refuses an input."""


class Refused(OpenMegError):
    """A message a service will not take: ``kind`` names the rule, ``reason`` says why."""

    def __init__(self, kind: str, reason: str) -> None:
        self.kind, self.reason = kind, reason
        super().__init__(reason)


def reason_of(err: ValidationError) -> tuple[str, str]:
    """``(kind, reason)`` of a validation error: the first field and rule it broke."""
    first = err.errors(include_url=False)[0]
    where = ".".join(str(p) for p in first["loc"][1:]) or "message"
    got = repr(first.get("input"))[:60]
    return f"{where}:{first['type']}", f"{where}: {first['msg']} (got {got})"


class Edge:
    """The refusals of one MEG's services, counted by ``(service, kind)``."""

    def __init__(self, site: str, bus: Bus | None = None, clock: Clock | None = None) -> None:
        """Alarms go on ``bus`` at ``clock``'s time (without both: counted and logged only)."""
        self.site, self.bus, self.clock = site, bus, clock
        self.counts: Counter[tuple[str, str]] = Counter()
        self.last: dict[str, str] = {}
        """The latest reason each service refused something for."""
        self._alarmed: set[str] = set()
        self._due: list[tuple[str, str]] = []
        self.services: set[str] = set()
        """The services that hold a gate (each may raise the refusal alarm)."""

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    def of(self, service: str) -> int:
        """How many inputs ``service`` refused."""
        return sum(n for (s, _), n in self.counts.items() if s == service)

    def gate(self, service: str) -> Gate:
        """The edge as ``service`` (an id: letters, digits, ``_``) sees it."""
        self.services.add(service)
        return Gate(self, service)

    def note(self, service: str, topic: str, kind: str, reason: str) -> None:
        """Count a refusal and log the first of its kind; the service's first is alarmed at
        the next ``flush``."""
        self.services.add(service)
        key = (service, kind)
        first = key not in self.counts
        self.counts[key] += 1
        self.last[service] = f"{topic}: {reason}"[:400]
        if first:
            log.warning(
                "%s refused a message on %s: %s (further refusals of this kind are counted, "
                "not logged)",
                service,
                topic,
                reason,
            )
        if service not in self._alarmed:
            self._alarmed.add(service)
            self._due.append((service, f"refused a message on {topic}: {reason}"[:480]))

    async def refuse(self, service: str, topic: str, kind: str, reason: str) -> None:
        """Count a refusal, log the first of its kind, alarm the first of the service."""
        self.note(service, topic, kind, reason)
        await self.flush()

    async def flush(self) -> None:
        """Send the alarms due (without a bus and a clock, they are dropped)."""
        due, self._due = self._due, []
        if self.bus is None or self.clock is None:
            return
        for service, text in due:
            msg = AlarmMessage(
                site=self.site,
                source=service,
                code=REFUSED_CODE,
                text=text,
                active=True,
                ts=self.clock.now(),
                severity="warning",
            )
            try:
                await self.bus.publish(alarm_topic(self.site, service), msg)
            except OpenMegError as err:
                log.warning("the alarm of %s's refusal could not be sent: %s", service, err)


class Gate:
    """One service's edge: check, handle, count what is refused."""

    def __init__(self, edge: Edge, service: str) -> None:
        self.edge, self.service = edge, service

    @property
    def refused(self) -> int:
        return self.edge.of(self.service)

    async def refuse(self, topic: str, kind: str, reason: str) -> None:
        await self.edge.refuse(self.service, topic, kind, reason)

    def take_now(self, topic: str, msg: BusMessage, handler: Callable[[BusMessage], Any]) -> bool:
        """``handle`` without waiting (for a synchronous pump): the alarm goes out at the
        edge's next ``flush``."""
        try:
            handler(revalidate(msg))
        except ValidationError as err:
            self.edge.note(self.service, topic, *reason_of(err))
            return False
        except Refused as err:
            self.edge.note(self.service, topic, err.kind, err.reason)
            return False
        except Exception as err:  # a handler's failure must not end the service
            if (self.service, "handler_failed") not in self.edge.counts:
                log.exception("%s failed on a message on %s", self.service, topic)
            self.edge.note(self.service, topic, "handler_failed", f"{type(err).__name__}: {err}")
            return False
        return True

    async def admit(self, topic: str, msg: BusMessage) -> BusMessage | None:
        """``msg`` checked against its model again, or ``None`` (refused and counted)."""
        try:
            return revalidate(msg)
        except ValidationError as err:
            kind, reason = reason_of(err)
            await self.refuse(topic, kind, reason)
            return None

    async def handle(
        self, topic: str, msg: BusMessage, handler: Callable[[BusMessage], Awaitable[Any]]
    ) -> bool:
        """Run ``handler`` on ``msg`` once admitted; whether it took it. A ``Refused`` or any
        other error of the handler is counted and alarmed, never raised."""
        admitted = await self.admit(topic, msg)
        if admitted is None:
            return False
        return await self.protect(topic, lambda: handler(admitted))

    async def protect(self, topic: str, work: Callable[[], Awaitable[Any]]) -> bool:
        """Run ``work`` (what came on ``topic``); whether it went through. A ``Refused`` or
        any other error is counted and alarmed, never raised."""
        try:
            await work()
        except Refused as err:
            await self.refuse(topic, err.kind, err.reason)
            return False
        except Exception as err:  # a handler's failure must not end the service
            if (self.service, "handler_failed") not in self.edge.counts:
                log.exception("%s failed on a message on %s", self.service, topic)
            await self.refuse(topic, "handler_failed", f"{type(err).__name__}: {err}"[:300])
            return False
        return True


def check_point_topic(topic: str, msg: BusMessage) -> None:
    """``Refused`` unless a point update travels on its own topic (``.../<device>/<name>``)."""
    parts = topic.split("/")
    device, name = getattr(msg, "device", None), getattr(msg, "name", None)
    if len(parts) != 5 or parts[3] != device or parts[4] != name:
        raise Refused("wrong_topic", f"a point of {device}/{name} on another point's topic")


def check_site(msg: BusMessage, site: str) -> None:
    """``Refused`` unless ``msg`` belongs to ``site``."""
    if msg.site != site:
        raise Refused("other_site", f"the message is of site {msg.site!r}, this is {site!r}")
