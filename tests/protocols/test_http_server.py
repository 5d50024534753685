"""Serving the API: a taken port is a clear error; port 0 takes a free one."""

import socket

import httpx
import pytest
from fastapi import FastAPI

from openmeg.core.errors import OpenMegError
from openmeg.protocols.http_server import HttpServer


def _app() -> FastAPI:
    app = FastAPI()

    @app.get("/health")
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    return app


async def test_a_taken_port_is_a_clear_error_and_port_0_takes_a_free_one() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(OpenMegError, match=f"cannot listen on 127.0.0.1:{port}.*--api-port"):
            await HttpServer(_app(), port=port).start()
    server = HttpServer(_app(), port=0)
    await server.start()
    try:
        assert server.port != 0
        async with httpx.AsyncClient() as c:
            assert (await c.get(f"{server.url}/health")).json() == {"status": "ok"}
    finally:
        await server.stop()


async def test_a_client_holding_a_request_open_cannot_stall_a_stop() -> None:
    import asyncio
    import time

    from openmeg.protocols.http_server import GRACE_S

    server = HttpServer(_app(), port=0)
    await server.start()
    _, writer = await asyncio.open_connection("127.0.0.1", server.port)
    writer.write(b"POST /health HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\npartial")
    await writer.drain()
    await asyncio.sleep(0.2)
    t0 = time.monotonic()
    await server.stop()
    assert time.monotonic() - t0 < GRACE_S + 3
    writer.close()
    await writer.wait_closed()
