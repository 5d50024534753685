"""Serving an ASGI app with uvicorn inside the caller's own event loop (HTTP, or HTTPS with the
site's certificate): the platform's API, and the simulated field's control interface."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import ssl
from collections.abc import Generator
from pathlib import Path

import uvicorn
from starlette.types import ASGIApp

from openmeg.core.errors import OpenMegError

GRACE_S = 3
"""How long a stop waits for requests in flight before it closes their connections."""


class _QuietServer(uvicorn.Server):
    """Leaves signals to the program: Ctrl-C stops it, and it stops its server."""

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield


class HttpServer:
    """One ASGI app on ``host:port`` (HTTPS with ``ssl_context``, or a certificate and key
    file); ``name`` and ``hint`` say in an error what it is and how to choose another port."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        host: str = "127.0.0.1",
        port: int = 8000,
        certfile: Path | None = None,
        keyfile: Path | None = None,
        ssl_context: ssl.SSLContext | None = None,
        name: str = "the API",
        hint: str = "choose another with --api-port (or --no-api)",
    ) -> None:
        config = uvicorn.Config(
            app,
            host=host,
            port=port,
            log_level="warning",
            lifespan="off",
            ssl_certfile=str(certfile) if certfile else None,
            ssl_keyfile=str(keyfile) if keyfile else None,
            ssl_context_factory=(lambda _c, _d: ssl_context) if ssl_context else None,
            ws_ping_interval=None,
            ws_per_message_deflate=False,  # small frames to many clients: compression costs more
            timeout_graceful_shutdown=GRACE_S,  # no client holding a request stalls a stop
        )
        self.server = _QuietServer(config)
        self.scheme = "https" if certfile or ssl_context else "http"
        self.host, self.port = host, port
        self.name, self.hint = name, hint
        self._task: asyncio.Task[None] | None = None

    @property
    def url(self) -> str:
        return f"{self.scheme}://{self.host}:{self.port}"

    async def start(self, timeout_s: float = 10.0) -> None:
        """Listen (a taken port is a clear error, not an exit) and serve in the background.

        The port is tried first, then left to uvicorn to bind: handing it our own socket
        halved its throughput (measured with benchmarks/api_load.py)."""
        sock = socket.socket(socket.AF_INET6 if ":" in self.host else socket.AF_INET)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((self.host, self.port))
        except OSError as err:
            sock.close()
            raise OpenMegError(
                f"{self.name} cannot listen on {self.host}:{self.port}: {err.strerror}; {self.hint}"
            ) from err
        self.port = sock.getsockname()[1]
        sock.close()
        self.server.config.port = self.port
        self._task = asyncio.create_task(self.server.serve(), name=f"openmeg-http-{self.port}")
        for _ in range(int(timeout_s / 0.02)):
            if self.server.started:
                return
            if self._task.done():
                break
            await asyncio.sleep(0.02)
        await self.stop()
        raise OpenMegError(f"{self.name} could not listen on {self.host}:{self.port}")

    async def stop(self) -> None:
        if self._task is None:
            return
        self.server.should_exit = True
        try:
            await asyncio.wait_for(asyncio.shield(self._task), GRACE_S + 2.0)
        except TimeoutError:
            self.server.force_exit = True  # past the grace: stop waiting for anyone
            self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError, SystemExit, OSError):
            await self._task
        self._task = None
