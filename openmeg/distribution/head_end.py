"""The AMI head-end (the data collector of Y.2071 clause 8): from the meters' import and export
registers it makes 15-minute interval energies, the difference of the registers at each
interval's boundaries, and sends them to the MDMS as readings messages."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from openmeg.core.messages import IntervalReading, MeterReadings, PointUpdate

INTERVAL = timedelta(minutes=15)
REGISTERS = {"import_kwh": "import", "export_kwh": "export"}


def floor_interval(ts: datetime) -> datetime:
    seconds = int(INTERVAL.total_seconds())
    epoch = int(ts.timestamp())
    return datetime.fromtimestamp(epoch - epoch % seconds, tz=ts.tzinfo)


@dataclass(kw_only=True)
class _Channel:
    value: float | None = None  # the register's latest value
    at_boundary: dict[datetime, float] = field(default_factory=dict)


class HeadEnd:
    """Keeps each meter register's value at each 15-minute boundary it has seen pass."""

    def __init__(self, site: str, meters: set[str]) -> None:
        self.site = site
        self.meters = meters
        self._channels: dict[tuple[str, str], _Channel] = {}
        self._now: datetime | None = None
        self.register_reads: list[tuple[str, str, datetime, float]] = []
        """Register values at the boundaries passed, for the MDMS to take (and clear)."""

    def observe(self, msg: PointUpdate) -> None:
        """Take a register value; ``tick`` must see time pass for boundaries to be recorded."""
        if msg.device not in self.meters or msg.name not in REGISTERS or msg.value != msg.value:
            return
        ch = self._channels.setdefault((msg.device, REGISTERS[msg.name]), _Channel())
        ch.value = msg.value

    def tick(self, now: datetime) -> list[MeterReadings]:
        """At a new instant: record registers at boundaries passed, return closed intervals."""
        out: list[MeterReadings] = []
        boundary = floor_interval(now)
        if self._now is not None and floor_interval(self._now) == boundary:
            self._now = now
            return out
        self._now = now
        for (meter, channel), ch in self._channels.items():
            if ch.value is None:
                continue
            ch.at_boundary[boundary] = ch.value
            self.register_reads.append((meter, channel, boundary, ch.value))
            previous = boundary - INTERVAL
            if previous in ch.at_boundary:
                energy = round(ch.at_boundary[boundary] - ch.at_boundary.pop(previous), 9)
                out.append(
                    MeterReadings(
                        site=self.site,
                        meter=meter,
                        channel=channel,
                        readings=[IntervalReading(interval_start=previous, value_kwh=energy)],
                    )
                )
        return out
