"""JSON over HTTPS/1.1 with mutual TLS, for the service advertisement server, the provider
servers and the premises' provisioning endpoint: each connection's handshake is done here, so a
refused one (no client certificate, another CA, expired, revoked, an old protocol or a weak
cipher) is reported to the server's owner, who audits it, and the server keeps running."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import ssl
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

from openmeg.core.errors import OpenMegError

MAX_BODY = 1 << 20
"""The largest request or response body [bytes]."""
MAX_HEAD = 16 << 10
"""The largest request or status line with its headers [bytes]."""
TIMEOUT_S = 10.0
"""How long a handshake or a read may take [s]."""
REASONS = {200: "OK", 400: "Bad Request", 403: "Forbidden", 404: "Not Found", 409: "Conflict"}
log = logging.getLogger("openmeg.provider.http")


class HttpError(OpenMegError):
    """An HTTPS exchange that failed: a refused handshake, a broken or refused request."""

    def __init__(self, message: str, *, status: int = 0) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True, kw_only=True, slots=True)
class Request:
    """One request, with the identity its TLS client certificate proved."""

    method: str
    path: str
    body: bytes
    peer_fingerprint: str
    peer_name: str

    def json(self) -> Any:
        """The body as JSON; ``HttpError`` (400) if it is not."""
        try:
            return json.loads(self.body)
        except ValueError as err:
            raise HttpError(f"the body of {self.path} is not JSON: {err}", status=400) from err


Handler = Callable[[Request], Awaitable[tuple[int, Any]]]
Refusal = Callable[[str, str], Awaitable[None]]  # (peer address, reason), audited


def cert_fingerprint(der: bytes) -> str:
    """SHA-256 of a DER certificate, hex (as IEEE 2030.5's LFDI)."""
    return hashlib.sha256(der).hexdigest()


def _peer(obj: ssl.SSLObject | None) -> tuple[str, str]:
    der = obj.getpeercert(binary_form=True) if obj is not None else None
    if not der:
        raise HttpError("the peer showed no certificate", status=403)
    cert: Any = obj.getpeercert() if obj is not None else None
    names = [v for rdn in (cert or {}).get("subject", ()) for k, v in rdn if k == "commonName"]
    return cert_fingerprint(der), str(names[0]) if names else ""


async def _read_message(reader: asyncio.StreamReader) -> tuple[str, dict[str, str], bytes]:
    async with asyncio.timeout(TIMEOUT_S):
        head = await reader.readuntil(b"\r\n\r\n")
    if len(head) > MAX_HEAD:
        raise HttpError("the request's headers are too long", status=400)
    first, *lines = head.decode("latin-1").split("\r\n")
    headers = {}
    for line in lines:
        if ":" in line:
            k, v = line.split(":", 1)
            headers[k.strip().lower()] = v.strip()
    try:
        size = int(headers.get("content-length", "0"))
    except ValueError as err:
        raise HttpError("Content-Length is not a number", status=400) from err
    if not 0 <= size <= MAX_BODY:
        raise HttpError(f"the body must be 0 to {MAX_BODY} bytes", status=400)
    async with asyncio.timeout(TIMEOUT_S):
        body = await reader.readexactly(size)
    return first, headers, body


def _frame(first: str, body: bytes) -> bytes:
    head = f"{first}\r\nContent-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    return head.encode("latin-1") + body


class MtlsServer:
    """Routes ``(method, path)`` to handlers on ``host:port`` (0: a free port), TLS from
    ``context()`` (called per connection, so a new CRL takes effect at once)."""

    def __init__(
        self,
        routes: Mapping[tuple[str, str], Handler],
        context: Callable[[], ssl.SSLContext],
        *,
        on_refused: Refusal,
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        self.routes, self.context, self.on_refused = routes, context, on_refused
        self.host, self.port = host, port
        self._server: asyncio.Server | None = None
        self._conns: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        """Listen; ``port`` is the one bound."""
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(lambda: _Held(self), self.host, self.port)
        self.port = self._server.sockets[0].getsockname()[1]

    async def close(self) -> None:
        """Stop listening and close every connection."""
        if self._server is not None:
            self._server.close()
        for t in list(self._conns):
            t.cancel()
        await asyncio.gather(*self._conns, return_exceptions=True)
        if self._server is not None:
            await self._server.wait_closed()

    def _accept(self, transport: asyncio.BaseTransport, held: _Held) -> None:
        task = asyncio.get_running_loop().create_task(self._connection(transport, held))
        self._conns.add(task)
        task.add_done_callback(self._conns.discard)

    async def _connection(self, raw: asyncio.BaseTransport, held: _Held) -> None:
        loop = asyncio.get_running_loop()
        host, port = raw.get_extra_info("peername")[:2]
        addr = f"{host}:{port}"
        assert isinstance(raw, asyncio.Transport)
        try:
            tls = await loop.start_tls(
                raw, held, self.context(), server_side=True, ssl_handshake_timeout=TIMEOUT_S
            )
            if tls is None:
                raise ConnectionError("the connection closed in the handshake")
            fp, name = _peer(tls.get_extra_info("ssl_object"))
        except (ssl.SSLError, HttpError, OSError, TimeoutError) as err:
            raw.abort()
            await self.on_refused(addr, f"TLS handshake refused: {err}")
            return
        reader = asyncio.StreamReader(limit=MAX_HEAD)
        protocol = asyncio.StreamReaderProtocol(reader)
        tls.set_protocol(protocol)
        protocol.connection_made(tls)
        if held.early:
            protocol.data_received(bytes(held.early))
            held.early.clear()
        if held.ended:
            protocol.eof_received()
        writer = asyncio.StreamWriter(tls, protocol, reader, loop)
        try:
            await self._serve(reader, writer, fp, name)
        finally:
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    async def _serve(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, fp: str, name: str
    ) -> None:
        while True:
            try:
                first, _, body = await _read_message(reader)
                method, path, _ = first.split(" ", 2)
            except (asyncio.IncompleteReadError, TimeoutError, ConnectionError, ssl.SSLError):
                return
            except (HttpError, ValueError, asyncio.LimitOverrunError):
                writer.write(_frame("HTTP/1.1 400 Bad Request", b'{"error":"malformed"}'))
                return
            handler = self.routes.get((method, path))
            req = Request(method=method, path=path, body=body, peer_fingerprint=fp, peer_name=name)
            try:
                if handler is None:
                    raise HttpError(f"no {method} {path} here", status=404)
                status, answer = await handler(req)
            except HttpError as err:
                status, answer = err.status or 400, {"error": str(err)}
            except Exception:  # a handler's fault: answered, logged, and the server goes on
                log.exception("%s %s failed", method, path)
                status, answer = 500, {"error": f"{method} {path} failed: see the server's log"}
            data = json.dumps(answer).encode()
            writer.write(_frame(f"HTTP/1.1 {status} {REASONS.get(status, 'Error')}", data))
            await writer.drain()


class _Held(asyncio.Protocol):
    """A new connection held unread until its TLS handshake starts."""

    def __init__(self, server: MtlsServer) -> None:
        self.server = server
        self.early = bytearray()  # what arrives with the handshake's end, before the swap
        self.ended = False

    def data_received(self, data: bytes) -> None:
        if len(self.early) + len(data) > MAX_HEAD + MAX_BODY:
            raise ConnectionError("too much data before the first request was read")
        self.early += data

    def eof_received(self) -> bool:
        self.ended = True
        return False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        transport.pause_reading()
        self.server._accept(transport, self)

    def connection_lost(self, exc: Exception | None) -> None:
        pass


class MtlsClient:
    """One kept-alive HTTPS connection with a client certificate; ``peer_fingerprint`` is the
    server certificate's, known after ``connect``."""

    def __init__(self, host: str, port: int, context: ssl.SSLContext) -> None:
        self.host, self.port, self.context = host, port, context
        self.peer_fingerprint = self.peer_name = ""
        self._rw: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None

    async def connect(self) -> MtlsClient:
        """Handshake; ``HttpError`` if it is refused or the server does not answer."""
        try:
            reader, writer = await asyncio.wait_for(
                asyncio.open_connection(
                    self.host, self.port, ssl=self.context, server_hostname=self.host
                ),
                TIMEOUT_S,
            )
        except (ssl.SSLError, OSError, TimeoutError) as err:
            raise HttpError(f"no TLS session with {self.host}:{self.port}: {err}") from err
        self._rw = reader, writer
        self.peer_fingerprint, self.peer_name = _peer(writer.get_extra_info("ssl_object"))
        return self

    async def request(self, method: str, path: str, payload: Any = None) -> tuple[int, Any]:
        """Send one request and return (status, JSON answer)."""
        if self._rw is None:
            await self.connect()
        assert self._rw is not None
        reader, writer = self._rw
        body = b"" if payload is None else json.dumps(payload).encode()
        head = f"{method} {path} HTTP/1.1\r\nHost: {self.host}"
        try:
            writer.write(_frame(head, body))
            await writer.drain()
            first, _, data = await _read_message(reader)
        except (asyncio.IncompleteReadError, ssl.SSLError, OSError, TimeoutError) as err:
            await self.close()
            raise HttpError(f"{method} {path} to {self.host}:{self.port} failed: {err}") from err
        try:
            return int(first.split(" ", 2)[1]), json.loads(data or b"null")
        except (IndexError, ValueError) as err:
            raise HttpError(f"{self.host}:{self.port} answered malformed HTTP") from err

    async def close(self) -> None:
        """Close the connection."""
        if self._rw is not None:
            writer = self._rw[1]
            self._rw = None
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()
