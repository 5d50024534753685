"""A Modbus TCP master connection (pymodbus), raising openmeg's own errors.

Reconnection is left to the caller (the DER data feeder decides when to try again); a request
that fails for want of a connection raises ``DeviceError``, one the device refuses raises
``CommandError`` with the device's exception code.
"""

from __future__ import annotations

from pymodbus.client import AsyncModbusTcpClient
from pymodbus.exceptions import ModbusException

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


class ModbusMaster:
    """One master connection to a device (``host:port``, unit id ``unit``)."""

    def __init__(self, host: str, port: int, unit: int, *, timeout_s: float = 1.0) -> None:
        self.host, self.port, self.unit = host, port, unit
        self.requests = 0  # requests attempted, answered or not
        self._client = AsyncModbusTcpClient(
            host, port=port, timeout=timeout_s, retries=0, reconnect_delay=0
        )

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}:{self.unit}"

    @property
    def connected(self) -> bool:
        return bool(self._client.connected)

    async def connect(self) -> None:
        """Open the connection; ``DeviceError`` when the device does not answer."""
        if self.connected:
            return
        try:
            ok = await self._client.connect()
        except (ModbusException, OSError) as err:
            raise DeviceError(f"cannot connect to {self.address}: {err}") from err
        if not ok:
            raise DeviceError(f"cannot connect to {self.address}: no answer")

    def close(self) -> None:
        self._client.close()

    async def read(self, address: int, count: int) -> list[int]:
        """Read ``count`` holding registers from ``address``."""
        if not 1 <= count <= MAX_READ:
            raise ValueError(f"a read takes 1 to {MAX_READ} registers, not {count}")
        self.requests += 1
        await self.connect()
        try:
            rr = await self._client.read_holding_registers(
                address, count=count, device_id=self.unit
            )
        except (ModbusException, OSError) as err:
            self.close()
            raise DeviceError(
                f"{self.address}: reading {count} at {address} failed: {err}"
            ) from err
        if rr.isError():
            code = int(getattr(rr, "exception_code", 0))
            raise DeviceError(
                f"{self.address}: reading {count} at {address} refused: "
                f"exception {code} ({EXCEPTION_TEXT.get(code, 'unknown')})"
            )
        return list(rr.registers)

    async def write(self, address: int, values: list[int]) -> None:
        """Write holding registers; ``CommandError`` with the device's answer if it refuses."""
        self.requests += 1
        await self.connect()
        try:
            rr = await self._client.write_registers(address, values, device_id=self.unit)
        except (ModbusException, OSError) as err:
            self.close()
            raise DeviceError(f"{self.address}: writing at {address} failed: {err}") from err
        if rr.isError():
            code = int(getattr(rr, "exception_code", 0))
            raise CommandError(
                f"{self.address} refused the write at {address}: exception {code} "
                f"({EXCEPTION_TEXT.get(code, 'unknown')})"
            )
