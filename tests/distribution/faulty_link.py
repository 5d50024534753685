"""A TCP proxy on 127.0.0.1 in front of a Modbus slave: it forwards, delays each request, goes
silent (accepts, never answers) or goes away (stops listening) and comes back."""

from __future__ import annotations

import asyncio
import contextlib


class FaultyLink:
    def __init__(self, target_port: int, *, delay_s: float = 0.0) -> None:
        self.target_port = target_port
        self.delay_s = delay_s
        self.silent = False
        self.port = 0
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._writers: set[asyncio.StreamWriter] = set()

    async def start(self) -> None:
        """Listen (again, on the same port once it had one)."""
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", self.port)
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        """Stop listening and drop every connection."""
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None
        for w in self._writers:
            w.transport.abort()  # each connection's tasks end on it
        if self._tasks:
            await asyncio.wait(self._tasks)
        self._tasks.clear()
        self._writers.clear()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        self._writers.add(writer)
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target_port)
        except OSError:
            writer.transport.abort()
            return
        self._writers.add(up_writer)
        back = asyncio.create_task(self._pump(up_reader, writer))
        self._tasks.add(back)
        try:
            while data := await reader.read(4096):
                if self.silent:
                    continue  # taken in, never answered
                if self.delay_s:
                    await asyncio.sleep(self.delay_s)
                up_writer.write(data)
        except OSError:
            pass  # the master hung up
        finally:
            back.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await back
            up_writer.transport.abort()
            writer.transport.abort()

    @staticmethod
    async def _pump(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(OSError):
            while data := await reader.read(4096):
                writer.write(data)
