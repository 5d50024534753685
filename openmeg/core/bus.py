"""The enterprise bus: async publish/subscribe of versioned messages on MQTT-style topics.

``InProcessBus`` is the default; ``openmeg.protocols.mqtt.MqttBus`` carries the same messages
through a real MQTT broker. Both follow MQTT topic filters (``+`` one level, ``#`` the rest).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Protocol

from openmeg.core.errors import BusError
from openmeg.core.messages import BusMessage


def topic_matches(pattern: str, topic: str) -> bool:
    """Whether ``topic`` matches the MQTT topic filter ``pattern``."""
    pat = pattern.split("/")
    top = topic.split("/")
    for i, part in enumerate(pat):
        if part == "#":
            return i == len(pat) - 1
        if i >= len(top):
            return False
        if part != "+" and part != top[i]:
            return False
    return len(pat) == len(top)


def check_filter(pattern: str) -> None:
    """Raise ``BusError`` when ``pattern`` is not a valid MQTT topic filter."""
    if not pattern:
        raise BusError("topic filter is empty: give e.g. 'meg/demo/#'")
    parts = pattern.split("/")
    for i, part in enumerate(parts):
        if ("#" in part and (part != "#" or i != len(parts) - 1)) or ("+" in part and part != "+"):
            raise BusError(f"topic filter {pattern!r}: '#' must be last and '+' a whole level")


class Subscription:
    """Messages on topics that match one filter, in arrival order."""

    def __init__(self, pattern: str, *, maxsize: int = 0) -> None:
        self.pattern = pattern
        self._queue: asyncio.Queue[tuple[str, BusMessage] | None] = asyncio.Queue(maxsize)

    def deliver(self, topic: str, message: BusMessage) -> None:
        self._queue.put_nowait((topic, message))

    def end(self) -> None:
        self._queue.put_nowait(None)

    async def get(self, timeout: float | None = None) -> tuple[str, BusMessage]:
        """The next ``(topic, message)``; ``TimeoutError`` after ``timeout`` seconds."""
        item = await asyncio.wait_for(self._queue.get(), timeout)
        if item is None:
            raise BusError(f"subscription {self.pattern!r} ended: the bus was closed")
        return item

    def get_nowait(self) -> tuple[str, BusMessage]:
        """The next ``(topic, message)`` already there; ``asyncio.QueueEmpty`` if none."""
        item = self._queue.get_nowait()
        if item is None:
            raise BusError(f"subscription {self.pattern!r} ended: the bus was closed")
        return item

    def pending(self) -> int:
        return self._queue.qsize()

    async def __aiter__(self) -> AsyncIterator[tuple[str, BusMessage]]:
        while True:
            item = await self._queue.get()
            if item is None:
                return
            yield item


class Bus(Protocol):
    """What every bus offers."""

    async def publish(self, topic: str, message: BusMessage) -> None: ...

    async def subscribe(self, pattern: str) -> Subscription: ...

    async def unsubscribe(self, subscription: Subscription) -> None: ...

    async def close(self) -> None: ...


class InProcessBus:
    """A bus inside one process: delivery is immediate and in order."""

    def __init__(self) -> None:
        self._subscriptions: list[Subscription] = []
        self._closed = False

    async def publish(self, topic: str, message: BusMessage) -> None:
        if self._closed:
            raise BusError("cannot publish: the bus is closed")
        if "+" in topic or "#" in topic:
            raise BusError(f"cannot publish to {topic!r}: wildcards are for subscriptions")
        for sub in self._subscriptions:
            if topic_matches(sub.pattern, topic):
                sub.deliver(topic, message)

    async def subscribe(self, pattern: str) -> Subscription:
        check_filter(pattern)
        sub = Subscription(pattern)
        self._subscriptions.append(sub)
        return sub

    async def unsubscribe(self, subscription: Subscription) -> None:
        if subscription in self._subscriptions:
            self._subscriptions.remove(subscription)
            subscription.end()

    async def close(self) -> None:
        self._closed = True
        for sub in self._subscriptions:
            sub.end()
        self._subscriptions.clear()
