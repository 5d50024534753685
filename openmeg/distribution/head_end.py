"""The AMI head-end (the data collector of Y.2071 clause 8): from the meters' import and export
registers it makes 15-minute interval energies, the difference of the registers at each
interval's boundaries, and sends them to the MDMS as readings messages.

Time is the head-end's clock, which a time synchronous unit may step. Each boundary is counted
once: when the clock steps back, boundaries already passed are not passed again; when it steps
forward over boundaries, the energy the registers gained is spread evenly over the intervals
stepped over, so that no interval is lost and no kWh is counted twice. An interval is reported
only when both its boundaries were seen (not the partial one a start falls into).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from openmeg.core.messages import IntervalReading, MeterReadings, PointUpdate

INTERVAL = timedelta(minutes=15)
REGISTERS = {"import_kwh": "import", "export_kwh": "export"}
"""A customer meter's registers, by the channel they feed."""
DEVICE_REGISTERS = {"energy_in_kwh": "import", "energy_kwh": "export"}
"""A power device's own meter: energy received (charging, consuming) and delivered."""


def floor_interval(ts: datetime) -> datetime:
    seconds = int(INTERVAL.total_seconds())
    epoch = int(ts.timestamp())
    return datetime.fromtimestamp(epoch - epoch % seconds, tz=ts.tzinfo)


@dataclass(kw_only=True)
class _Channel:
    value: float | None = None  # the register's latest value
    boundary: datetime | None = None  # the last boundary recorded, and the value there
    at_boundary: float = 0.0


class HeadEnd:
    """Keeps each meter register's value at the last 15-minute boundary it has seen pass."""

    def __init__(
        self, site: str, meters: set[str], registers: dict[str, str] | None = None
    ) -> None:
        self.site = site
        self.meters = meters
        self.registers = REGISTERS if registers is None else registers
        self._channels: dict[tuple[str, str], _Channel] = {}
        self._boundary: datetime | None = None  # the latest boundary passed
        self.register_reads: list[tuple[str, str, datetime, float]] = []
        """Register values at the boundaries passed, for the MDMS to take (and clear)."""

    def observe(self, msg: PointUpdate) -> None:
        """Take a register value; ``tick`` must see time pass for boundaries to be recorded."""
        channel = self.registers.get(msg.name)
        if msg.device not in self.meters or channel is None or msg.value != msg.value:
            return
        ch = self._channels.setdefault((msg.device, channel), _Channel())
        ch.value = msg.value

    def tick(self, now: datetime) -> list[MeterReadings]:
        """At a new instant: record registers at boundaries passed, return closed intervals."""
        boundary = floor_interval(now)
        first = self._boundary is None
        if not first and boundary <= self._boundary:  # type: ignore[operator]
            return []  # the same interval, or the clock stepped back: nothing passed
        self._boundary = boundary
        if first and now != boundary:
            return []  # started inside an interval: its start was not seen
        out: list[MeterReadings] = []
        for (meter, channel), ch in self._channels.items():
            if ch.value is None:
                continue
            self.register_reads.append((meter, channel, boundary, ch.value))
            previous, energy = ch.boundary, ch.value - ch.at_boundary
            ch.boundary, ch.at_boundary = boundary, ch.value
            if previous is None:
                continue
            n = round((boundary - previous) / INTERVAL)
            readings = [
                IntervalReading(
                    interval_start=previous + i * INTERVAL, value_kwh=round(energy / n, 9)
                )
                for i in range(n)
            ]
            out.append(
                MeterReadings(site=self.site, meter=meter, channel=channel, readings=readings)
            )
        return out
