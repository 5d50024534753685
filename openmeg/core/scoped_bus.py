"""A bus seen by one component: it publishes only its own topics (``openmeg.core.bus_acl``), the
same rule that the broker's ACL holds every MQTT client to; and ``Buses``, the bus of each."""

from __future__ import annotations

from collections.abc import Mapping

from openmeg.core.bus import Bus, Subscription
from openmeg.core.bus_acl import PLATFORM, component, may_publish, user_name
from openmeg.core.errors import BusError
from openmeg.core.messages import BusMessage


class ScopedBus:
    """``inner`` for component ``name`` of ``site``: a publish outside its topics is refused.

    ``owns``: closing this closes ``inner`` too (a connection of its own)."""

    def __init__(self, inner: Bus, *, site: str, name: str, owns: bool = False) -> None:
        component(name)  # a KeyError names the known components
        self.inner, self.site, self.name, self._owns = inner, site, name, owns
        self.refused = 0

    async def publish(self, topic: str, message: BusMessage) -> None:
        if not may_publish(self.site, self.name, topic):
            self.refused += 1
            raise BusError(
                f"{user_name(self.site, self.name)} may not publish on {topic!r}: "
                f"see the topics of component {self.name!r} in openmeg.core.bus_acl (docs/mqtt.md)"
            )
        await self.inner.publish(topic, message)

    async def subscribe(self, pattern: str) -> Subscription:
        return await self.inner.subscribe(pattern)

    async def unsubscribe(self, subscription: Subscription) -> None:
        await self.inner.unsubscribe(subscription)

    async def close(self) -> None:
        if self._owns:
            await self.inner.close()


class Buses:
    """The bus each component of the platform publishes and subscribes through."""

    def __init__(self, of: Mapping[str, Bus]) -> None:
        missing = [c for c in PLATFORM if c not in of]
        if missing:
            raise BusError(f"no bus for the components {', '.join(missing)}")
        self._of = dict(of)

    @classmethod
    def shared(cls, site: str, bus: Bus) -> Buses:
        """One bus (e.g. in-process) shared by every component, each held to its own topics."""
        return cls({c: ScopedBus(bus, site=site, name=c) for c in PLATFORM})

    def of(self, name: str) -> Bus:
        """The bus of component ``name``."""
        try:
            return self._of[name]
        except KeyError:
            raise BusError(f"no bus for component {name!r}: have {', '.join(self._of)}") from None

    async def close(self) -> None:
        """Close each component's bus (a shared bus stays open: its owner closes it)."""
        for bus in self._of.values():
            await bus.close()
