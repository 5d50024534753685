"""The WebSocket stream: point updates, alarms and mode changes from the bus, batched a few
times a second, each client receiving what it subscribed to (a prosumer: their own devices).

A client connects to ``/api/v1/stream?token=...`` and may send, at any time,
``{"subscribe": {"topics": ["points", "alarms", "modes"], "devices": ["*"]}}``. Frames are
``{"ts": ..., "points": [[device, name, value, ts], ...], "alarms": [...], "modes": [...]}``.
A client too slow to take its frames loses the oldest ones, never stalls the others.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from fastapi import WebSocket, WebSocketDisconnect

from openmeg.api.context import Scope
from openmeg.core.bus import Bus
from openmeg.core.bus import Subscription as BusSubscription
from openmeg.core.clock import Clock
from openmeg.core.edge import Edge, Gate, check_site
from openmeg.core.messages import AlarmMessage, BusMessage, ModeChange, PointUpdate

TOPICS = frozenset({"points", "alarms", "modes"})
QUEUE = 64
EXPIRED = 4401
"""The close code for a token that expired (4401: 4000 + HTTP's 401), with its reason."""


@dataclass(eq=False, kw_only=True)
class StreamClient:
    socket: WebSocket
    scope: Scope
    topics: frozenset[str] = TOPICS
    devices: frozenset[str] = frozenset({"*"})
    queue: asyncio.Queue[str] = field(default_factory=lambda: asyncio.Queue(QUEUE))
    dropped: int = 0

    def key(self) -> tuple[Any, ...]:
        """Clients with the same key get the same frame (encoded once)."""
        return (self.topics, self.devices, self.scope.key())

    def wants(self, device: str) -> bool:
        return ("*" in self.devices or device in self.devices) and self.scope.sees_device(device)

    def offer(self, frame: str) -> None:
        if self.queue.full():
            self.queue.get_nowait()
            self.dropped += 1
        self.queue.put_nowait(frame)


class StreamHub:
    def __init__(
        self, site: str, bus: Bus, *, flush_every_s: float = 0.2, gate: Gate | None = None
    ) -> None:
        """What arrives is checked at ``gate`` before any client sees it."""
        self.site, self.bus, self.flush_every_s = site, bus, flush_every_s
        self.gate = gate or Edge(site).gate("stream")
        self.clients: set[StreamClient] = set()
        self._sub: BusSubscription | None = None
        self._task: asyncio.Task[None] | None = None
        self.frames_sent = 0

    async def start(self) -> None:
        self._sub = await self.bus.subscribe(f"meg/{self.site}/#")
        self._task = asyncio.create_task(self._run(), name="openmeg-stream-hub")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        if self._sub is not None:
            await self.bus.unsubscribe(self._sub)
            self._sub = None

    async def _run(self) -> None:
        assert self._sub is not None
        points: dict[tuple[str, str], list[Any]] = {}
        alarms: list[dict[str, Any]] = []
        modes: list[dict[str, Any]] = []
        next_flush = time.monotonic() + self.flush_every_s
        while True:
            wait = max(0.0, next_flush - time.monotonic())
            msg: BusMessage | None
            try:
                topic, msg = await self._sub.get(timeout=wait)
            except TimeoutError:
                msg = None
            if msg is not None and isinstance(msg, PointUpdate | AlarmMessage | ModeChange):
                msg = await self._admit(topic, msg)
            if isinstance(msg, PointUpdate):
                at = msg.ts.isoformat()
                points[(msg.device, msg.name)] = [msg.device, msg.name, msg.value, at]
            elif isinstance(msg, AlarmMessage):
                alarms.append(msg.model_dump(mode="json", exclude={"v", "type"}))
            elif isinstance(msg, ModeChange):
                modes.append({"mode": msg.mode, "ts": msg.ts.isoformat()})
            if time.monotonic() >= next_flush:
                if points or alarms or modes:
                    sent = partial(self._sent, list(points.values()), alarms, modes)
                    await self.gate.protect("stream", sent)  # a failure never ends the hub
                points, alarms, modes = {}, [], []
                next_flush = time.monotonic() + self.flush_every_s

    async def _admit(self, topic: str, msg: BusMessage) -> BusMessage | None:
        """``msg`` if it passes the edge (checked again, of this site), else ``None``."""
        taken: list[BusMessage] = []

        async def take(m: BusMessage) -> None:
            check_site(m, self.site)
            taken.append(m)

        await self.gate.handle(topic, msg, take)
        return taken[0] if taken else None

    async def _sent(
        self, points: list[list[Any]], alarms: list[dict[str, Any]], modes: list[dict[str, Any]]
    ) -> None:
        self._flush(points, alarms, modes)

    def _flush(
        self, points: list[list[Any]], alarms: list[dict[str, Any]], modes: list[dict[str, Any]]
    ) -> None:
        encoded: dict[tuple[Any, ...], str | None] = {}
        sent_at = time.time()
        for client in list(self.clients):
            key = client.key()
            if key not in encoded:
                frame: dict[str, Any] = {"sent_at": sent_at}
                if "points" in client.topics:
                    frame["points"] = [p for p in points if client.wants(p[0])]
                if "alarms" in client.topics and client.scope.everything:
                    frame["alarms"] = alarms
                if "modes" in client.topics:
                    frame["modes"] = modes
                has = any(frame.get(k) for k in ("points", "alarms", "modes"))
                encoded[key] = json.dumps(frame) if has else None
            text = encoded[key]
            if text is not None:
                client.offer(text)
                self.frames_sent += 1

    async def serve(
        self,
        client: StreamClient,
        *,
        expires_at: float | None = None,
        wall: Clock | None = None,
    ) -> None:
        """Send the client its frames and take its subscriptions until it goes away, or until
        its token expires: at ``expires_at`` (the token's ``exp``, seconds since the epoch) on
        ``wall`` if given, the clock the tokens are checked on, else on the machine's clock.
        Then it is closed with 4401.

        The expiry is an instant, not a duration: however late the wait for it begins (a busy
        loop, the clock corrected meanwhile), the stream ends when its token does."""
        self.clients.add(client)
        now = time.time if wall is None else lambda: wall.now().timestamp()
        sender = asyncio.create_task(self._send(client, expires_at, now))
        expiry = (
            asyncio.create_task(self._expire(client, expires_at, now))
            if expires_at is not None
            else None
        )
        try:
            while True:
                message = await client.socket.receive_json()
                self._subscribe(client, message)
        except (WebSocketDisconnect, RuntimeError):
            pass
        except ValueError:
            await client.socket.close(code=1003, reason="send JSON")
        finally:
            self.clients.discard(client)
            for task in (sender, expiry):
                if task is not None:
                    task.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await task

    async def _expire(self, client: StreamClient, at: float, now: Callable[[], float]) -> None:
        """Close the client at ``at`` (seconds since the epoch) on ``now``, looked at every
        second: the clock may be corrected (or moved by a test) meanwhile."""
        while (left := at - now()) > 0:
            await asyncio.sleep(min(left, 1.0))
        self.clients.discard(client)  # no frame after the expiry
        with contextlib.suppress(WebSocketDisconnect, RuntimeError):
            await client.socket.close(code=EXPIRED, reason="the token has expired: log in again")

    async def _send(
        self, client: StreamClient, expires_at: float | None, now: Callable[[], float]
    ) -> None:
        with contextlib.suppress(WebSocketDisconnect, RuntimeError):
            while True:
                frame = await client.queue.get()
                if expires_at is not None and now() >= expires_at:
                    return  # not one frame after the token's expiry: _expire closes it
                await client.socket.send_text(frame)

    def _subscribe(self, client: StreamClient, message: Any) -> None:
        sub = message.get("subscribe") if isinstance(message, dict) else None
        if not isinstance(sub, dict):
            return
        topics = sub.get("topics", list(TOPICS))
        devices = sub.get("devices", ["*"])
        if isinstance(topics, list) and all(isinstance(t, str) for t in topics):
            client.topics = frozenset(topics) & TOPICS
        if isinstance(devices, list) and all(isinstance(d, str) for d in devices):
            client.devices = frozenset(devices)
