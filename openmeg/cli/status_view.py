"""The live status view of ``openmeg run``: the MEG's time in the site's zone, its mode and
figures, the speed asked for and the speed achieved, and the alarms active in the SCADA."""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

from rich.table import Table
from rich.text import Text

if TYPE_CHECKING:
    from openmeg.app import LiveMeg
    from openmeg.core.site import Site
    from openmeg.operation.scada import Alarm

SHOWN = 5
"""Alarms listed one a row; more are counted."""
RANK = {"critical": 0, "warning": 1, "info": 2}
STYLE = {"critical": "bold red", "warning": "yellow", "info": "cyan"}


class SpeedMeter:
    """The speed achieved: MEG seconds per wall second over the last ``window_s`` of wall
    time (a sliding window, so that it follows a slow-down within seconds)."""

    def __init__(
        self, window_s: float = 10.0, *, wall: Callable[[], float] = time.monotonic
    ) -> None:
        self.window_s, self._wall = window_s, wall
        self._samples: deque[tuple[float, float]] = deque()

    def sample(self, meg_time: datetime | None) -> None:
        """Note the MEG's time now (``None``: no cycle yet, nothing noted)."""
        if meg_time is None:
            return
        now = self._wall()
        self._samples.append((now, meg_time.timestamp()))
        # keep one sample at or before the window's start, so that the window is whole
        while len(self._samples) > 2 and self._samples[1][0] <= now - self.window_s:
            self._samples.popleft()

    def speed(self) -> float | None:
        """MEG seconds per wall second, ``None`` until a second of wall time is seen."""
        if len(self._samples) < 2:
            return None
        (w0, m0), (w1, m1) = self._samples[0], self._samples[-1]
        return (m1 - m0) / (w1 - w0) if w1 - w0 >= 1.0 else None

    def span_s(self) -> float:
        """The wall time the measure is over."""
        return self._samples[-1][0] - self._samples[0][0] if self._samples else 0.0


def speed_text(asked: float, meter: SpeedMeter) -> Text:
    """``asked 60x, achieved 18.3x (last 10 s)``, the achieved part yellow if under 90 %."""
    text = Text(f"asked {asked:g}x, achieved ")
    achieved = meter.speed()
    if achieved is None:
        return text.append("- (measuring)")
    style = "yellow" if achieved < 0.9 * asked else "green"
    return text.append(f"{achieved:.1f}x", style).append(f" (last {meter.span_s():.0f} s)")


def local_time(ts: datetime | None, zone: ZoneInfo) -> str:
    return f"{ts.astimezone(zone):%Y-%m-%d %H:%M:%S %Z}" if ts is not None else "-"


def alarm_rows(alarms: Sequence[Alarm], zone: ZoneInfo) -> list[tuple[str, Text]]:
    """The alarms active, most severe and then oldest first: a count, then one row each
    (severity, source/code, text, since when, acknowledged or not), the rest counted."""
    if not alarms:
        return [("alarms", Text("none active", "green"))]
    ordered = sorted(alarms, key=lambda a: (RANK.get(a.severity, 3), a.raised_at, a.key))
    counts = {s: sum(a.severity == s for a in alarms) for s in RANK}
    summary = ", ".join(f"{n} {s}" for s, n in counts.items() if n)
    rows = [("alarms", Text(f"{len(alarms)} active ({summary})", STYLE[ordered[0].severity]))]
    for a in ordered[:SHOWN]:
        line = Text(f"{a.severity:<8}", STYLE.get(a.severity, ""))
        line.append(f" {a.key}: {a.text}")
        since = f"{a.raised_at.astimezone(zone):%m-%d %H:%M:%S}"
        ack = f", acknowledged by {a.acknowledged_by}" if a.acknowledged else ""
        line.append(f" (since {since}{ack})", "dim")
        rows.append(("", line))
    if len(ordered) > SHOWN:
        rows.append(("", Text(f"... and {len(ordered) - SHOWN} more (openmeg alarms, or /api)")))
    return rows


def status_view(site: Site, meg: LiveMeg, *, speed: float, meter: SpeedMeter) -> Table:
    """The live status view: time, mode, frequency, import, storage, speed, cycles, alarms."""
    s = meg.status
    zone = ZoneInfo(site.site.timezone)
    t = Table(title=f"openmeg live: {site.site.name}", show_header=False)
    t.add_row(f"time ({site.site.timezone})", local_time(s.ts, zone))
    t.add_row("mode", s.mode)
    t.add_row("frequency", f"{s.frequency_hz:.3f} Hz")
    t.add_row("import at PCC", f"{s.import_kw:.1f} kW")
    for device, soc in s.soc.items():
        t.add_row(f"{device} state of charge", f"{soc:.1%}")
    t.add_row("speed (MEG s per wall s)", speed_text(speed, meter))
    t.add_row("cycles / cycle time", f"{s.cycles} / {s.cycle_ms:.2f} ms")
    t.add_row("commands accepted", str(s.commands))
    t.add_row("points stored", str(meg.historian.stored))
    t.add_row("devices on the wire", str(len(meg.feeder.links)))
    t.add_row("setpoints written", str(meg.writer.writes_total))
    if s.held:
        t.add_row("held safe", ", ".join(f"{d}: {why}" for d, why in s.held.items()))
    for label, value in alarm_rows(meg.scada.alarms(active_only=True), zone):
        t.add_row(label, value)
    return t
