"""The AMI head-end (the data collector of Y.2071 clause 8): from the meters' import and export
registers it makes 15-minute interval energies, the difference of the registers at each
interval's boundaries, and sends them to the MDMS as readings messages.

Time is the head-end's clock, which a time synchronous unit may step. Each boundary is counted
once: when the clock steps back, boundaries already passed are not passed again; when it steps
forward over boundaries, the energy the registers gained is spread evenly over the intervals
stepped over, so that no interval is lost and no kWh is counted twice. An interval is reported
only when both its boundaries were seen (not the partial one a start falls into).

A register value is taken only if it is a number, not negative, not below the last one taken,
and not above it by more than the meter's largest power (``max_kw``) allows over the time
elapsed (plus ``slack_s``): anything else is refused (``Refused``), and the interval it arrived
in is left unreported on both of the meter's channels (a position is never half known): the
MDMS sees a gap, which it fills by reading the registers again or estimates, rather than
kWh that were never measured.
"""

from __future__ import annotations

import math
from collections.abc import Set
from dataclasses import dataclass
from datetime import datetime, timedelta

from openmeg.core.edge import Refused
from openmeg.core.messages import IntervalReading, MeterReadings, PointUpdate
from openmeg.core.points import Quality

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
    seen_at: datetime | None = None  # when it was taken
    boundary: datetime | None = None  # the last boundary recorded, and the value there
    at_boundary: float = 0.0
    refused: bool = False  # a value was refused since the last boundary


class HeadEnd:
    """Keeps each meter register's value at the last 15-minute boundary it has seen pass."""

    def __init__(
        self,
        site: str,
        meters: set[str],
        registers: dict[str, str] | None = None,
        *,
        max_kw: float | None = None,
        slack_s: float = 60.0,
        known: Set[str] | None = None,
    ) -> None:
        """``max_kw``: the largest power a meter measures (``None``: no bound on a register's
        rise); ``known``: every device of the site (a register of a device outside it, and
        of none of ``meters``, is refused; by default, any not in ``meters`` is)."""
        self.site = site
        self.meters = meters
        self.registers = REGISTERS if registers is None else registers
        self.max_kw, self.slack_s = max_kw, slack_s
        self.known = known
        self._channels: dict[tuple[str, str], _Channel] = {}
        self._boundary: datetime | None = None  # the latest boundary passed
        self.register_reads: list[tuple[str, str, datetime, float]] = []
        """Register values at the boundaries passed, for the MDMS to take (and clear)."""

    def observe(self, msg: PointUpdate, now: datetime | None = None) -> None:
        """Take a register value arriving at ``now`` (default: its own time stamp); ``tick``
        must see time pass for boundaries to be recorded. ``Refused`` says why not."""
        channel = self.registers.get(msg.name)
        if channel is None:
            return
        if msg.device not in self.meters:
            if self.known is None or msg.device not in self.known:
                raise Refused("unknown_meter", f"{msg.device!r} is no meter of this site")
            return
        value = msg.value
        if value is None or msg.quality is Quality.INVALID:
            return
        ch = self._channels.setdefault((msg.device, channel), _Channel())
        at = now or msg.ts
        problem = self._problem(ch, value, at)
        if problem:
            ch.refused = True
            raise Refused(problem[0], f"{msg.device}/{msg.name} = {value!r} kWh: {problem[1]}")
        ch.value, ch.seen_at = value, at

    def _problem(self, ch: _Channel, value: float, at: datetime) -> tuple[str, str] | None:
        if not math.isfinite(value) or value < 0:
            return "register_invalid", "a register holds a finite, non-negative number"
        if ch.value is None or ch.seen_at is None:
            return None
        if value < ch.value:
            return "register_backwards", f"below the last value taken, {ch.value:g} kWh"
        if self.max_kw is None:
            return None
        elapsed_s = max(0.0, (at - ch.seen_at).total_seconds()) + self.slack_s
        most = self.max_kw * elapsed_s / 3600.0
        if value - ch.value > most:
            return (
                "register_jump",
                f"{value - ch.value:g} kWh more than {ch.value:g} in {elapsed_s - self.slack_s:g}"
                f" s, beyond the {most:g} kWh that {self.max_kw:g} kW allow",
            )
        return None

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
        suspect = {meter for (meter, _), ch in self._channels.items() if ch.refused}
        for (meter, channel), ch in self._channels.items():
            if ch.value is None:
                continue
            self.register_reads.append((meter, channel, boundary, ch.value))
            previous, energy = ch.boundary, ch.value - ch.at_boundary
            ch.boundary, ch.at_boundary = boundary, ch.value
            ch.refused = False
            if previous is None or meter in suspect:
                continue  # no start seen, or a value refused: the interval is not reported
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
