"""The Modbus TCP master against a pymodbus server, and against a hand-made slave that answers out
of turn, in pieces, for another unit, or not at all."""

import asyncio
import struct
from collections.abc import AsyncIterator, Callable

import pytest
from pymodbus.server import ModbusTcpServer
from pymodbus.simulator import DataType, SimData, SimDevice

from openmeg.core.errors import CommandError, DeviceError
from openmeg.protocols.modbus import ModbusMaster


@pytest.fixture
async def pymodbus_port() -> AsyncIterator[int]:
    server = ModbusTcpServer(
        SimDevice(
            id=3, simdata=[SimData(address=0, count=100, values=7, datatype=DataType.REGISTERS)]
        ),
        address=("127.0.0.1", 0),
    )
    await server.serve_forever(background=True)
    try:
        yield server.transport.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    finally:
        await server.shutdown()


async def test_reads_writes_and_refusals_against_pymodbus(pymodbus_port: int) -> None:
    master = ModbusMaster("127.0.0.1", pymodbus_port, 3)
    try:
        assert await master.read(10, 3) == [7, 7, 7]
        await master.write(10, [1, 0xFFFF, 300])
        assert await master.read(9, 5) == [7, 1, 0xFFFF, 300, 7]
        with pytest.raises(DeviceError, match=r"reading 2 at 99 refused: exception 2 \(illegal"):
            await master.read(99, 2)
        with pytest.raises(CommandError, match=r"refused the write at 150: exception 2"):
            await master.write(150, [1])
        assert await master.read(0, 125 - 25) == [7] * 10 + [1, 0xFFFF, 300] + [7] * 87
        with pytest.raises(ValueError, match="1 to 125 registers, not 126"):
            await master.read(0, 126)
        assert master.requests == 6  # the read refused before it was sent is no request
    finally:
        master.close()


class _Slave:
    """A slave on 127.0.0.1 that answers each request with ``answer(request, writer)``."""

    def __init__(self, answer: Callable[[bytes, asyncio.StreamWriter], object]) -> None:
        self.answer = answer
        self.tasks: list[asyncio.Task[None]] = []

    async def start(self) -> int:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        return int(self.server.sockets[0].getsockname()[1])

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self.tasks.append(task)
        try:
            while request := await reader.read(12):
                result = self.answer(request, writer)
                if asyncio.iscoroutine(result):
                    await result
        except OSError:
            pass
        finally:
            writer.close()

    async def stop(self) -> None:
        """Once the master closed its connection: the connection's task ends, then the server."""
        await asyncio.wait_for(asyncio.gather(*self.tasks), 5)
        self.server.close()
        await self.server.wait_closed()


def _frame(tid: int, unit: int, *values: int) -> bytes:
    n = len(values)
    return struct.pack(f">HHHBBB{n}H", tid, 0, 3 + 2 * n, unit, 3, 2 * n, *values)


async def test_a_late_answer_to_another_request_is_dropped_and_frames_are_reassembled() -> None:
    async def answer(request: bytes, writer: asyncio.StreamWriter) -> None:
        tid, unit = struct.unpack_from(">H", request)[0], request[6]
        writer.write(_frame(tid ^ 0x5555, unit, 0xDEAD))  # out of turn: not this request's
        whole = _frame(tid, unit, 0x1234)
        writer.write(whole[:5])
        await writer.drain()
        await asyncio.sleep(0.02)
        writer.write(whole[5:])

    slave = _Slave(answer)
    master = ModbusMaster("127.0.0.1", await slave.start(), 9)
    try:
        assert await master.read(40000, 1) == [0x1234]
        assert await master.read(40000, 1) == [0x1234]  # the next transaction id, same again
    finally:
        master.close()
        await slave.stop()


async def test_another_units_answer_and_silence_are_device_errors() -> None:
    def other_unit(request: bytes, writer: asyncio.StreamWriter) -> None:
        writer.write(_frame(struct.unpack_from(">H", request)[0], request[6] + 1, 1))

    slave = _Slave(other_unit)
    master = ModbusMaster("127.0.0.1", await slave.start(), 1)
    try:
        with pytest.raises(DeviceError, match="answered by unit 2"):
            await master.read(40000, 1)
        assert not master.connected
    finally:
        master.close()
        await slave.stop()
    silent = _Slave(lambda request, writer: None)
    master = ModbusMaster("127.0.0.1", await silent.start(), 1, timeout_s=0.2)
    try:
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        with pytest.raises(DeviceError, match=r"reading 1 at 40000 failed: no answer in 0.2 s"):
            await master.read(40000, 1)
        assert 0.2 <= loop.time() - t0 < 0.5 and not master.connected
    finally:
        master.close()
        await silent.stop()


async def test_a_write_with_no_answer_is_sent_once_more_on_a_new_connection() -> None:
    seen: list[bytes] = []

    def deaf_once(request: bytes, writer: asyncio.StreamWriter) -> None:
        if len(request) < 12:  # the rest of a write's frame (read 12 bytes at a time)
            return
        seen.append(request)
        if len(seen) > 1:  # the write's echo: function 16, address 40078, 1 register
            writer.write(request[:4] + struct.pack(">HBBHH", 6, 1, 16, 40078, 1))

    slave = _Slave(deaf_once)
    master = ModbusMaster("127.0.0.1", await slave.start(), 1, timeout_s=0.2)
    try:
        await master.write(40078, [2])
        assert len(seen) == 2 and seen[0][7:] == seen[1][7:]  # the same write, sent again
        assert master.requests == 2 and master.connected
    finally:
        master.close()
        await slave.stop()
    silent = _Slave(lambda request, writer: None)
    master = ModbusMaster("127.0.0.1", await silent.start(), 1, timeout_s=0.2)
    try:
        with pytest.raises(
            DeviceError, match=r"writing at 40078 failed: no answer in 0.2 s \(sent 2 times\)$"
        ):
            await master.write(40078, [2])
        assert master.requests == 2 and not master.connected
    finally:
        master.close()
        await silent.stop()


async def test_nobody_listening_is_a_device_error_that_names_the_address() -> None:
    server = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    server.close()
    await server.wait_closed()
    master = ModbusMaster("127.0.0.1", port, 1)
    with pytest.raises(DeviceError, match=f"cannot connect to 127.0.0.1:{port}:1"):
        await master.read(40000, 2)
    assert master.requests == 1
