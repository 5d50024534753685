"""The stream ends when its token does: at the token's expiry, an instant on the API's clock,
however late the wait for it begins and wherever the clock is moved meanwhile."""

from __future__ import annotations

import asyncio
import time
from typing import Any, cast

from fastapi import WebSocket, WebSocketDisconnect

from openmeg.api.context import Scope
from openmeg.api.stream import EXPIRED, StreamClient, StreamHub
from openmeg.core.bus import InProcessBus
from openmeg.core.clock import WallClock


class Socket:
    """A client's WebSocket that stays connected until the server closes it."""

    def __init__(self) -> None:
        self.closed = asyncio.Event()
        self.code: int | None = None
        self.sent: list[str] = []

    async def receive_json(self) -> Any:
        await self.closed.wait()
        raise WebSocketDisconnect(self.code or 1000)

    async def send_text(self, text: str) -> None:
        self.sent.append(text)

    async def close(self, code: int = 1000, reason: str | None = None) -> None:
        self.code = code
        self.closed.set()


def served(hub: StreamHub, socket: Socket) -> StreamClient:
    return StreamClient(socket=cast(WebSocket, socket), scope=Scope(everything=True))


async def test_the_stream_closes_at_its_tokens_expiry_however_late_the_wait_begins() -> None:
    wall = WallClock(source=lambda: 1_000.0)  # stands still but for what the test moves it by
    hub = StreamHub("demo", InProcessBus())
    socket = Socket()
    client = served(hub, socket)
    serving = asyncio.create_task(hub.serve(client, expires_at=1_900.0, wall=wall))
    wall.set_offset(60)  # the clock moves on before the stream's own tasks have begun
    await asyncio.sleep(0.05)
    assert client in hub.clients and socket.code is None  # 840 s left
    wall.set_offset(900)  # the token's expiry
    await asyncio.wait_for(serving, 3)
    assert socket.code == EXPIRED and client not in hub.clients


async def test_a_stream_whose_token_has_expired_by_the_time_it_is_served_closes_at_once() -> None:
    wall = WallClock(source=lambda: 2_000.0)
    hub = StreamHub("demo", InProcessBus())
    socket = Socket()
    client = served(hub, socket)
    client.offer('{"points": []}')  # a frame queued for it is not sent after the expiry
    await asyncio.wait_for(hub.serve(client, expires_at=1_999.0, wall=wall), 3)
    assert socket.code == EXPIRED and socket.sent == []


async def test_without_a_clock_given_the_expiry_is_on_the_machines_clock() -> None:
    hub = StreamHub("demo", InProcessBus())
    socket = Socket()
    t0 = time.monotonic()
    await asyncio.wait_for(hub.serve(served(hub, socket), expires_at=time.time() + 0.3), 3)
    assert socket.code == EXPIRED and 0.2 < time.monotonic() - t0 < 2
