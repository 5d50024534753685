"""The time synchronous unit (Y.2071 Appendix III.1, III.2): keeps a ``WallClock`` on an
authorised time server, and raises an alarm when the offset is too large or the server is
silent."""

from __future__ import annotations

from dataclasses import dataclass

from openmeg.core.clock import WallClock
from openmeg.core.errors import DeviceError
from openmeg.protocols.ntp import NtpSample, query


@dataclass(frozen=True, kw_only=True)
class SyncResult:
    sample: NtpSample | None
    alarm: str = ""


class TimeSync:
    def __init__(
        self, clock: WallClock, host: str, port: int, *, max_offset_s: float = 1.0
    ) -> None:
        self.clock, self.host, self.port = clock, host, port
        self.max_offset_s = max_offset_s

    def sync(self) -> SyncResult:
        """Measure the machine clock's offset and apply it; say what is wrong, if anything:
        the server is silent, or the clock as corrected so far was off by more than
        ``max_offset_s`` (it is stepped to the server's time)."""
        try:
            sample = query(self.host, self.port, now=self.clock.source)
        except DeviceError as err:
            return SyncResult(sample=None, alarm=f"time server unreachable: {err}")
        step = sample.offset_s - self.clock.offset_s  # how far off the corrected clock was
        self.clock.set_offset(sample.offset_s)
        alarm = ""
        if abs(step) > self.max_offset_s:
            alarm = (
                f"clock was {step:+.3f} s off the time server "
                f"(more than {self.max_offset_s:g} s); corrected"
            )
        return SyncResult(sample=sample, alarm=alarm)
