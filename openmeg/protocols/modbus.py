"""A Modbus TCP master connection on asyncio, raising openmeg's own errors.

Function codes 3 (read holding registers) and 16 (write multiple registers) in MBAP frames; each
request carries its own transaction id, so a late answer to a request given up is recognised and
dropped. Reconnection is left to the caller (the DER data feeder decides when to try again); a
request that fails for want of a connection or an answer raises ``DeviceError``, one the device
refuses raises ``DeviceError`` (read) or ``CommandError`` (write) with the device's exception code.

Written for the feeder's hot path: one request costs a frame packed, a future and a callback,
where a general client (pymodbus) builds and decodes PDU objects for every request.
"""

from __future__ import annotations

import asyncio
import struct

from openmeg.core.errors import CommandError, DeviceError

EXCEPTION_TEXT = {
    1: "illegal function",
    2: "illegal data address",
    3: "illegal data value",
    4: "device failure",
    6: "device busy",
    10: "gateway path unavailable",
    11: "gateway target failed to respond",
}
MAX_READ = 125
"""The most registers one read may ask for (Modbus application protocol)."""
MAX_WRITE = 123
"""The most registers one write may carry."""

_READ = struct.Struct(">HHHBBHH")
_HEADER = struct.Struct(">HHH")


class _Connection(asyncio.Protocol):
    """The socket of one master: frames split out of the stream, answers matched to requests."""

    def __init__(self, address: str) -> None:
        self.address = address
        self.transport: asyncio.Transport | None = None
        self.loop = asyncio.get_running_loop()
        self.waiting: dict[int, asyncio.Future[bytes]] = {}
        self._buffer = b""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        buffer = self._buffer + data if self._buffer else data
        while len(buffer) >= 7:
            tid, protocol, length = _HEADER.unpack_from(buffer)
            end = 6 + length
            if protocol != 0 or length < 2:
                self.shut(DeviceError(f"{self.address} sent a frame that is no Modbus TCP"))
                return
            if len(buffer) < end:
                break
            future = self.waiting.pop(tid, None)
            if future is not None and not future.done():
                future.set_result(buffer[6:end])  # unit id, function code, data
            buffer = buffer[end:]
        self._buffer = buffer

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None
        reason = f": {exc}" if exc else ""
        self.shut(DeviceError(f"{self.address} closed the connection{reason}"))

    def shut(self, err: DeviceError) -> None:
        """Close the socket; every request still waiting fails with ``err``."""
        if self.transport is not None:
            self.transport.abort()
            self.transport = None
        waiting, self.waiting = self.waiting, {}
        for future in waiting.values():
            if not future.done():
                future.set_exception(err)


def _expire(future: asyncio.Future[bytes]) -> None:
    if not future.done():
        future.set_exception(TimeoutError())


class _NoAnswer(DeviceError):
    """No answer in time: the request may be sent again."""


class ModbusMaster:
    """One master connection to a device (``host:port``, unit id ``unit``)."""

    def __init__(
        self, host: str, port: int, unit: int, *, timeout_s: float = 1.0, write_attempts: int = 2
    ) -> None:
        """``write_attempts``: how many times a write that got no answer in ``timeout_s`` is
        sent (on a new connection each time; writing the same registers again is harmless).
        Reads are not sent again: the next poll is."""
        self.host, self.port, self.unit = host, port, unit
        self.timeout_s, self.write_attempts = timeout_s, max(1, write_attempts)
        self.requests = 0  # requests attempted, answered or not
        self._conn: _Connection | None = None
        self._connecting = asyncio.Lock()
        self._tid = 0

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}:{self.unit}"

    @property
    def connected(self) -> bool:
        return self._conn is not None and self._conn.transport is not None

    async def connect(self) -> None:
        """Open the connection; ``DeviceError`` when the device does not answer."""
        if self.connected:
            return
        async with self._connecting:  # a poll and a command at once share one connection
            if self.connected:
                return
            loop = asyncio.get_running_loop()
            try:
                async with asyncio.timeout(self.timeout_s):
                    _, conn = await loop.create_connection(
                        lambda: _Connection(self.address), self.host, self.port
                    )
            except (OSError, TimeoutError) as err:
                reason = err or "no answer"
                raise DeviceError(f"cannot connect to {self.address}: {reason}") from err
            self._conn = conn

    def close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            conn.shut(DeviceError(f"{self.address}: the connection was closed"))

    async def _connected(self) -> None:
        """Open the connection if it is not; a failed attempt counts as a request."""
        if not self.connected:
            try:
                await self.connect()
            except DeviceError:
                self.requests += 1
                raise

    async def read(self, address: int, count: int) -> list[int]:
        """Read ``count`` holding registers from ``address``."""
        data = await self.read_bytes(address, count)
        return list(struct.unpack(f">{count}H", data))

    async def read_bytes(self, address: int, count: int) -> bytes:
        """Read ``count`` holding registers from ``address``, as the ``2 * count`` bytes sent."""
        if not 1 <= count <= MAX_READ:
            raise ValueError(f"a read takes 1 to {MAX_READ} registers, not {count}")
        await self._connected()
        answer = await self._wait(self.send_read(address, count), f"reading {count} at {address}")
        return self.registers_of(answer, address, count)

    def send_read(self, address: int, count: int) -> asyncio.Future[bytes]:
        """Send a read at once on the open connection (``DeviceError`` if there is none); the
        future gets the answer, for ``registers_of``. It has no timeout of its own: a caller
        that gives up on it cancels it and closes the connection."""
        if not 1 <= count <= MAX_READ:
            raise ValueError(f"a read takes 1 to {MAX_READ} registers, not {count}")
        self.requests += 1
        tid = self._tid = (self._tid + 1) & 0xFFFF
        return self._send(tid, _READ.pack(tid, 0, 6, self.unit, 3, address, count))

    def registers_of(self, answer: bytes, address: int, count: int) -> bytes:
        """The register bytes of the answer to a read; ``DeviceError`` if it refused or is not
        an answer to that read."""
        what = f"reading {count} at {address}"
        if answer[0] != self.unit:
            self.close()
            raise DeviceError(f"{self.address}: {what}: answered by unit {answer[0]}")
        if answer[1] == 0x83:
            raise DeviceError(f"{self.address}: {what} refused: {_exception(answer)}")
        if answer[1] != 3 or len(answer) != 3 + 2 * count or answer[2] != 2 * count:
            self.close()
            raise DeviceError(f"{self.address}: {what}: the answer is malformed")
        return answer[3:]

    async def write(self, address: int, values: list[int]) -> None:
        """Write holding registers; ``CommandError`` with the device's answer if it refuses.
        A write with no answer in time is sent again, up to ``write_attempts`` in all."""
        count = len(values)
        if not 1 <= count <= MAX_WRITE:
            raise ValueError(f"a write takes 1 to {MAX_WRITE} registers, not {count}")
        for attempt in range(1, self.write_attempts + 1):
            try:
                return await self._write_once(address, values)
            except _NoAnswer as err:
                if attempt == self.write_attempts:
                    sent = "" if attempt == 1 else f" (sent {attempt} times)"
                    raise DeviceError(f"{err}{sent}") from err

    async def _write_once(self, address: int, values: list[int]) -> None:
        count = len(values)
        await self._connected()
        self.requests += 1
        tid = self._tid = (self._tid + 1) & 0xFFFF
        frame = struct.pack(
            f">HHHBBHHB{count}H", tid, 0, 7 + 2 * count, self.unit, 16, address, count, 2 * count,
            *values,
        )  # fmt: skip
        answer = await self._wait(self._send(tid, frame), f"writing at {address}")
        if answer[1] == 0x90:
            raise CommandError(
                f"{self.address} refused the write at {address}: {_exception(answer)}"
            )
        if answer[1] != 16 or answer[2:6] != struct.pack(">HH", address, count):
            self.close()
            raise DeviceError(f"{self.address}: writing at {address}: the answer is malformed")

    def _send(self, tid: int, frame: bytes) -> asyncio.Future[bytes]:
        conn = self._conn
        if conn is None or conn.transport is None:
            raise DeviceError(f"{self.address} is not connected")
        future: asyncio.Future[bytes] = conn.loop.create_future()
        conn.waiting[tid] = future
        conn.transport.write(frame)
        return future

    async def _wait(self, future: asyncio.Future[bytes], what: str) -> bytes:
        timer = asyncio.get_running_loop().call_later(self.timeout_s, _expire, future)
        try:
            return await future
        except TimeoutError as err:
            self.close()
            raise _NoAnswer(
                f"{self.address}: {what} failed: no answer in {self.timeout_s} s"
            ) from err
        except DeviceError as err:
            self.close()
            raise DeviceError(f"{self.address}: {what} failed: {err}") from err
        except asyncio.CancelledError:
            self.close()  # given up (the caller's deadline): a late answer must not linger
            raise
        finally:
            timer.cancel()


def _exception(answer: bytes) -> str:
    code = answer[2] if len(answer) > 2 else 0
    return f"exception {code} ({EXCEPTION_TEXT.get(code, 'unknown')})"
