"""Gaps in a meter channel's readings, and the MDMS service that fills them by asking the
head-end to read the meter again (two-way AMI) before VEE would estimate them.

A channel's expected intervals run from its first stored reading up to the latest closed
boundary; what is not stored is a gap. Each gap is asked for once (a ``ReadRequest`` on
``read_request_topic``); the head-end answers on the readings topic from the register values it
recorded at the boundaries. A gap still open at the next check after its request cannot be
filled from the registers: it is left for VEE to estimate, and an event says so."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from contextlib import aclosing
from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd

from openmeg.core.bus import Bus, cycle_beats
from openmeg.core.clock import Clock
from openmeg.core.messages import ReadRequest, read_request_topic
from openmeg.core.store import Store, as_utc
from openmeg.operation.mdms.store import CHANNELS, INTERVAL, MeterReadings


def floor_interval(ts: datetime) -> datetime:
    step = int(INTERVAL.total_seconds())
    epoch = int(as_utc(ts).timestamp())
    return datetime.fromtimestamp(epoch - epoch % step, UTC)


Gap = tuple[datetime, datetime]
"""``start <= interval start < end``."""


def gaps(stored: Iterable[datetime], first: datetime, until: datetime) -> list[Gap]:
    """The runs of intervals missing from ``stored`` between ``first`` and ``until``."""
    step = int(INTERVAL.total_seconds())
    lo, hi = int(as_utc(first).timestamp()), int(as_utc(until).timestamp())
    if hi <= lo:
        return []
    have = np.zeros((hi - lo) // step, dtype=bool)
    for t in stored:
        i = (int(as_utc(t).timestamp()) - lo) // step
        if 0 <= i < len(have):
            have[i] = True
    missing = np.flatnonzero(~have)
    if not len(missing):
        return []
    breaks = np.flatnonzero(np.diff(missing) > 1)
    starts = np.concatenate(([missing[0]], missing[breaks + 1]))
    ends = np.concatenate((missing[breaks], [missing[-1]])) + 1
    at = pd.Timestamp(lo, unit="s", tz="UTC")
    return [
        ((at + s * INTERVAL).to_pydatetime(), (at + e * INTERVAL).to_pydatetime())
        for s, e in zip(starts, ends, strict=True)
    ]


class GapFiller:
    """The MDMS's gap detection for ``meters`` of ``site`` (the ``mdms`` bus component)."""

    def __init__(
        self,
        site: str,
        bus: Bus,
        store: Store,
        meters: Iterable[str],
        *,
        clock: Clock | None = None,
        lookback: timedelta = timedelta(days=2),
    ) -> None:
        self.site, self.bus, self.store, self.clock = site, bus, store, clock
        self.lookback = lookback
        self._boundary: datetime | None = None
        self.meters = sorted(meters)
        self.readings = MeterReadings(store)
        self.asked: dict[tuple[str, str, datetime, datetime], bool] = {}
        self.requested = 0
        self.left_for_vee = 0

    def find(self, until: datetime) -> list[tuple[str, str, Gap]]:
        """Every gap of every channel in the look-back window up to ``until`` (the latest
        closed boundary), from the channel's first reading in the window (one query)."""
        since = as_utc(until) - self.lookback
        out = []
        for channel in CHANNELS:
            grid = self.readings.matrix(self.meters, channel, since, as_utc(until))
            for meter in self.meters:
                got = grid.index[grid[meter].notna().to_numpy()]
                if len(got):
                    first = got.min().to_pydatetime()
                    out += [(meter, channel, g) for g in gaps(got, first, until)]
        return sorted(out)
        return out

    async def pump(self) -> list[ReadRequest]:
        """At a new boundary of the clock: check up to the one before (a grace of one
        interval for the newest readings to be stored)."""
        assert self.clock is not None
        now = self.clock.now()
        boundary = floor_interval(now)
        if boundary == self._boundary:
            return []
        self._boundary = boundary
        return await self.check(now, until=boundary - INTERVAL)

    async def run(self, stop: asyncio.Event) -> None:
        """Check at each beat of the control cycle, until ``stop`` is set."""
        async with aclosing(cycle_beats(self.bus, self.site, stop)) as beats:
            async for _ in beats:
                await self.pump()

    async def check(self, now: datetime, until: datetime) -> list[ReadRequest]:
        """Ask the head-end for each new gap; report the gaps asked for before and still open
        (left for VEE to estimate). The requests sent."""
        found = await self.store.in_thread(self.find, until)
        sent = []
        for meter, channel, (start, end) in found:
            key = (meter, channel, start, end)
            if key not in self.asked:
                req = ReadRequest(
                    site=self.site, meter=meter, channel=channel, start=start, end=end, ts=now
                )
                await self.bus.publish(read_request_topic(self.site, meter), req)
                self.asked[key] = False
                self.requested += 1
                sent.append(req)
            elif not self.asked[key]:
                self.asked[key] = True
                self.left_for_vee += 1
                n = round((end - start) / INTERVAL)
                await self.store.in_thread(
                    lambda m=meter, c=channel, a=start, b=end, k=n: self.store.add_event(
                        ts=now,
                        site=self.site,
                        kind="mdms",
                        source=f"{m}/{c}",
                        code="gap-unfilled",
                        text=f"{m} {c}: {k} interval(s) from {a.isoformat()} to {b.isoformat()}"
                        " could not be read again from the meter; left for VEE to estimate",
                        severity="warning",
                    )
                )
        return sent
