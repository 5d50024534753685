"""The enterprise bus: async publish/subscribe of versioned messages on MQTT-style topics.

``InProcessBus`` is the default; ``openmeg.protocols.mqtt.MqttBus`` carries the same messages
through a real MQTT broker. Both follow MQTT topic filters (``+`` one level, ``#`` the rest).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, AsyncIterator
from datetime import datetime
from typing import Protocol

from openmeg.core.errors import BusError
from openmeg.core.messages import BusMessage, PointUpdate, cycle_topic


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

    async def next_or_stop(self, stop: asyncio.Event) -> tuple[str, BusMessage] | None:
        """The next ``(topic, message)``, waiting for it; ``None`` once ``stop`` is set and
        nothing is waiting any more, or when the bus was closed."""
        if not self._queue.empty():
            return self._queue.get_nowait()
        if stop.is_set():
            return None
        getting = asyncio.ensure_future(self._queue.get())
        stopping = asyncio.ensure_future(stop.wait())
        try:
            await asyncio.wait((getting, stopping), return_when=asyncio.FIRST_COMPLETED)
        finally:
            for waiter in (getting, stopping):
                waiter.cancel()  # a get cancelled before it returned leaves its item queued
            await asyncio.wait((getting, stopping))
        if getting.cancelled():
            return None
        return getting.result()


async def bursts(
    sub: Subscription, stop: asyncio.Event
) -> AsyncIterator[list[tuple[str, BusMessage]]]:
    """What arrives on ``sub``, a burst at a time: the first message waited for, then every
    other one already waiting. Ends once ``stop`` is set (after what was waiting then) or the
    bus closes; it waits without polling."""
    while True:
        item = await sub.next_or_stop(stop)
        if item is None:
            return
        burst = [item]
        while sub.pending():
            more = sub._queue.get_nowait()
            if more is None:
                yield burst
                return
            burst.append(more)
        yield burst


async def messages(sub: Subscription, stop: asyncio.Event) -> AsyncIterator[tuple[str, BusMessage]]:
    """What arrives on ``sub``, one ``(topic, message)`` at a time, until ``stop`` is set (after
    what was waiting then) or the bus closes; it waits without polling."""
    while True:
        item = await sub.next_or_stop(stop)
        if item is None:
            return
        yield item


async def cycle_beats(bus: Bus, site: str, stop: asyncio.Event) -> AsyncGenerator[datetime]:
    """The instant of each control cycle of ``site`` as it is reported on the bus, until
    ``stop`` is set: the timer of the services that work on the clock rather than on a message
    (in simulation the cycle's time steps, so they keep the cycle's time whatever their lag).
    Use it within ``contextlib.aclosing``."""
    beats = await bus.subscribe(cycle_topic(site))
    try:
        async for _, beat in messages(beats, stop):
            if isinstance(beat, PointUpdate):
                yield beat.ts
    finally:
        await bus.unsubscribe(beats)


def waiting(sub: Subscription | None) -> list[tuple[str, BusMessage]]:
    """Every ``(topic, message)`` already waiting on ``sub``, without waiting."""
    out: list[tuple[str, BusMessage]] = []
    while sub is not None and sub.pending():
        item = sub._queue.get_nowait()
        if item is None:
            break
        out.append(item)
    return out


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
