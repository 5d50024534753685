"""The one clock of openmeg: every module asks an injected ``Clock`` for the time."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Protocol


class Clock(Protocol):
    """Source of aware UTC time and of waiting."""

    def now(self) -> datetime:
        """The current instant, timezone-aware, in UTC."""
        ...

    async def sleep(self, seconds: float) -> None:
        """Wait ``seconds`` of this clock's time."""
        ...


class WallClock:
    """Real time, corrected by the offset measured against an authorised time server.

    ``offset_s`` is added to the machine's clock: a positive offset means the machine is behind.
    """

    def __init__(self, *, offset_s: float = 0.0, source: Callable[[], float] = time.time) -> None:
        self._offset_s = offset_s
        self.source = source  # the machine's own clock, seconds since the epoch

    @property
    def offset_s(self) -> float:
        return self._offset_s

    def set_offset(self, offset_s: float) -> None:
        """Apply a newly measured offset to the authorised time source."""
        self._offset_s = offset_s

    def now(self) -> datetime:
        return datetime.fromtimestamp(self.source() + self._offset_s, tz=UTC)

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(max(0.0, seconds))


class SimClock:
    """Simulated time that runs ``speed`` times faster than real time.

    ``speed=0`` (the default) never waits: ``sleep`` advances the time at once, which makes tests
    deterministic. ``advance`` moves the time by hand. With a speed, ``sleep`` waits until the
    real instant that matches the simulated one, so that the work done between sleeps does not
    make simulated time lag behind: at speed 1 it keeps pace with the wall clock.
    """

    def __init__(
        self, start: datetime, *, speed: float = 0.0, anchor_epoch_s: float | None = None
    ) -> None:
        """``anchor_epoch_s``: the wall-clock instant (seconds since the epoch) at which it is
        ``start``; two clocks with the same start, speed and anchor keep the same time in two
        processes (the platform and the simulated field)."""
        if start.tzinfo is None:
            raise ValueError("SimClock needs an aware start time (e.g. 2026-01-01T00:00:00+00:00)")
        if speed < 0:
            raise ValueError(f"SimClock speed must be >= 0, got {speed}")
        self._now = start.astimezone(UTC)
        self._speed = speed
        self._anchor: tuple[float, datetime] | None = None  # (real s, simulated instant)
        self._real: Callable[[], float] = time.monotonic
        if anchor_epoch_s is not None:
            self._anchor, self._real = (anchor_epoch_s, self._now), time.time

    @property
    def speed(self) -> float:
        return self._speed

    def now(self) -> datetime:
        return self._now

    def advance(self, seconds: float) -> None:
        """Move simulated time forward by ``seconds`` (never backward)."""
        if seconds < 0:
            raise ValueError(f"simulated time cannot go backward ({seconds} s)")
        self._now += timedelta(seconds=seconds)

    async def sleep(self, seconds: float) -> None:
        if self._speed > 0:
            if self._anchor is None:
                self._anchor = (self._real(), self._now)
            real0, sim0 = self._anchor
            target = self._now + timedelta(seconds=seconds)
            due = real0 + (target - sim0).total_seconds() / self._speed
            await asyncio.sleep(max(0.0, due - self._real()))
        else:
            await asyncio.sleep(0)
        self.advance(seconds)
