"""An SNTP client (RFC 4330): the offset and round-trip delay of this machine's clock against an
authorised time server."""

from __future__ import annotations

import socket
import struct
import time
from collections.abc import Callable
from dataclasses import dataclass

from openmeg.core.errors import DeviceError

NTP_EPOCH_OFFSET = 2_208_988_800  # seconds from 1900-01-01 to 1970-01-01


@dataclass(frozen=True, kw_only=True)
class NtpSample:
    offset_s: float  # add to the local clock to get the server's time
    delay_s: float
    stratum: int


def _to_ntp(t: float) -> bytes:
    seconds = int(t) + NTP_EPOCH_OFFSET
    return struct.pack("!II", seconds, int((t % 1.0) * 2**32))


def _from_ntp(data: bytes) -> float:
    seconds, fraction = struct.unpack("!II", data)
    return float(seconds - NTP_EPOCH_OFFSET + fraction / 2**32)


def query(
    host: str, port: int = 123, *, timeout_s: float = 1.0, now: Callable[[], float] = time.time
) -> NtpSample:
    """One client/server exchange; ``DeviceError`` when the server does not answer properly."""
    t1 = now()
    request = bytes([0x23]) + bytes(39) + _to_ntp(t1)  # LI 0, version 4, mode 3 (client)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(timeout_s)
        try:
            s.sendto(request, (host, port))
            data, _ = s.recvfrom(512)
        except OSError as err:
            raise DeviceError(f"time server {host}:{port} does not answer: {err}") from err
    t4 = now()
    if len(data) < 48 or data[0] & 0x07 != 4:
        raise DeviceError(f"time server {host}:{port} sent no server reply")
    stratum = data[1]
    if not 1 <= stratum <= 15:
        raise DeviceError(f"time server {host}:{port} is not synchronised (stratum {stratum})")
    if data[24:32] != request[40:48]:
        raise DeviceError(f"time server {host}:{port} answered another request")
    t2, t3 = _from_ntp(data[32:40]), _from_ntp(data[40:48])
    return NtpSample(
        offset_s=((t2 - t1) + (t3 - t4)) / 2.0, delay_s=(t4 - t1) - (t3 - t2), stratum=stratum
    )
