"""The automatic VEE: every closed local day of every meter is validated as soon as it closes on
the MEG's clock (after a grace for its last readings), and again when late readings change a
day already validated. On start and at each day's close, the days of the look-back window whose
raw revision differs from the one VEE validated (or that have readings and were never validated)
are taken (readings imported beside the bus); in between, the MDMS's announcements of stored
readings mark the days they touch. A meter channel that cannot be
validated (no like-day history for a long gap) is reported as an event and tried again when its
readings change."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Sequence
from contextlib import aclosing
from datetime import date, datetime, timedelta

import numpy as np
import pandas as pd

from openmeg.core.bus import Bus, Subscription, cycle_beats, waiting
from openmeg.core.clock import Clock
from openmeg.core.messages import BusMessage, stored_readings_topic
from openmeg.core.messages import MeterReadings as ReadingsMessage
from openmeg.core.store import Store
from openmeg.operation.mdms import raw_arrays
from openmeg.operation.mdms.store import CHANNELS
from openmeg.operation.mdms.validated import ValidatedReadings
from openmeg.operation.mdms.vee import VeeConfig
from openmeg.operation.mdms.vee_matrix import local_days
from openmeg.operation.mdms.vee_run import ChannelVee, day_status, vee_channel

Pending = dict[str, dict[str, set[date]]]
"""Days to validate: channel -> meter -> local dates."""


class VeeService:
    """The MDMS's automatic VEE for ``meters`` of ``site`` (the ``mdms`` bus component)."""

    def __init__(
        self,
        site: str,
        store: Store,
        meters: Iterable[str],
        cfg: VeeConfig,
        *,
        clock: Clock,
        bus: Bus | None = None,
        lookback_days: int = 35,
        grace: timedelta = timedelta(minutes=30),
        consumers: Iterable[str] | None = None,
    ) -> None:
        """``consumers``: the meters whose import channel is active, so that a day of zeros is
        suspect (all by default; a generator's own meter imports nothing for days)."""
        self.site, self.store, self.cfg, self.clock, self.bus = site, store, cfg, clock, bus
        self.meters = sorted(meters)
        self.consumers = set(self.meters if consumers is None else consumers)
        self.lookback_days, self.grace = lookback_days, grace
        self.validated = ValidatedReadings(store, site)
        self.pending: Pending = {c: {} for c in CHANNELS}
        self._closed: date | None = None
        self._sub: Subscription | None = None
        self.days_validated = 0
        self.local_days: set[date] = set()
        self.new_versions = 0
        self.problems = 0

    async def start(self) -> None:
        if self.bus is not None:
            self._sub = await self.bus.subscribe(stored_readings_topic(self.site, "+"))

    async def stop(self) -> None:
        if self.bus is not None and self._sub is not None:
            await self.bus.unsubscribe(self._sub)
            self._sub = None

    def last_closed(self, now: datetime) -> date:
        """The latest local day closed at ``now`` (its end plus the grace has passed)."""
        local = pd.Timestamp(now - self.grace).tz_convert(self.cfg.timezone)
        closed: date = (local.normalize() - pd.Timedelta(days=1)).date()
        return closed

    def _mark(self, channel: str, meters: Iterable[str], days: Iterable[date]) -> None:
        book, wanted = self.pending[channel], list(days)
        for m in meters:
            book.setdefault(m, set()).update(wanted)

    def stale(self, channel: str, first: date, last: date) -> dict[str, set[date]]:
        """The days ``first..last`` of each meter that have readings of their own and whose
        raw readings changed since VEE validated them (or that were never validated)."""
        start = pd.Timestamp(first).tz_localize(self.cfg.timezone)
        end = pd.Timestamp(last + timedelta(days=1)).tz_localize(self.cfg.timezone)
        lo, hi = raw_arrays.utc_day_floor(start), raw_arrays.utc_day_ceil(end)
        values, revisions = raw_arrays.raw_days(self.validated.raw, self.meters, channel, lo, hi)
        step = pd.Timedelta(minutes=15)
        n, offset = int((end - start) / step), int((start - lo) / step)
        days, revs = day_status(start.tz_convert("UTC"), n, offset, revisions, self.cfg)
        bounds = local_days(start.tz_convert("UTC"), n, self.cfg) + offset
        seen = np.zeros((len(self.meters), values.shape[1] + 1), np.int64)
        np.cumsum(~np.isnan(values), axis=1, out=seen[:, 1:])
        own = seen[:, bounds[1:]] - seen[:, bounds[:-1]]
        done = self.validated.status(self.meters, channel, days)
        rows, cols = np.nonzero((own > 0) & (revs != done))
        out: dict[str, set[date]] = {}
        for r, c in zip(rows.tolist(), cols.tolist(), strict=True):
            out.setdefault(self.meters[r], set()).add(date.fromisoformat(days[c]))
        return out

    def take(self, items: Sequence[tuple[str, BusMessage]], closed: date) -> None:
        """Mark the closed days that stored readings touched: the local days of the readings
        and every local day that shares a UTC day row with them (a raw revision is kept per
        UTC day, so a reading of 00:15 in New York changes the revision the day before was
        validated at: that day is validated again, to the same values, at the new revision)."""
        for _, msg in items:
            if isinstance(msg, ReadingsMessage) and msg.site == self.site and msg.readings:
                at = pd.DatetimeIndex([pd.Timestamp(r.interval_start) for r in msg.readings])
                rows = at.tz_convert("UTC").floor("D").unique()
                edges = rows.append(rows + (pd.Timedelta(days=1) - pd.Timedelta(minutes=15)))
                days = set(at.tz_convert(self.cfg.timezone).date)
                days |= set(edges.tz_convert(self.cfg.timezone).date)
                self._mark(msg.channel, [msg.meter], (d for d in days if d <= closed))

    def validate_pending(self, now: datetime) -> list[ChannelVee]:
        """Validate every pending day, a local day at a time on the matrix of the meters it is
        pending for (so that a day that cannot be estimated holds up no other); the pending
        set emptied."""
        out: list[ChannelVee] = []
        for channel in CHANNELS:
            book, self.pending[channel] = self.pending[channel], {}
            for day in sorted(set().union(*book.values())):
                meters = sorted(m for m, days in book.items() if day in days)
                out += self._validate_day(channel, meters, day, now)
        return out

    def _validate_day(
        self, channel: str, meters: list[str], day: date, now: datetime
    ) -> list[ChannelVee]:
        start = pd.Timestamp(day).tz_localize(self.cfg.timezone)
        end = pd.Timestamp(day + timedelta(days=1)).tz_localize(self.cfg.timezone)
        done = vee_channel(
            self.validated,
            meters,
            channel,
            start.to_pydatetime(),
            end.to_pydatetime(),
            self.cfg,
            active=np.array([channel == "import" and m in self.consumers for m in meters]),
            now=now,
        )
        for r in done:
            if r.problem and not r.empty:
                self.problems += 1
                self.store.add_event(
                    ts=now,
                    site=self.site,
                    kind="mdms",
                    source=f"{r.meter}/{r.channel}",
                    code="vee-failed",
                    text=f"{r.meter} {r.channel}: VEE could not validate {day}: {r.problem}",
                    severity="warning",
                )
            elif not r.problem:
                self.days_validated += 1
                self.local_days.add(day)
                self.new_versions += r.new_versions
        return done

    async def pump(self) -> list[ChannelVee]:
        """At the clock's time: the days closed since the last call and the look-back window's
        stale days (on the first call and at each close), the days late readings touched;
        validated."""
        now = self.clock.now()
        closed = self.last_closed(now)
        if self._closed is None or closed > self._closed:
            first = closed - timedelta(days=self.lookback_days - 1)
            for channel in CHANNELS:  # what changed without a word on the bus (imports)
                stale = await self.store.in_thread(self.stale, channel, first, closed)
                for meter, days in stale.items():
                    self._mark(channel, [meter], days)
        if self._closed is not None and closed > self._closed:
            gone = (closed - self._closed).days
            new = [self._closed + timedelta(days=k + 1) for k in range(gone)]
            for channel in CHANNELS:
                self._mark(channel, self.meters, new)
        self._closed = closed
        self.take(waiting(self._sub), closed)
        if not any(self.pending.values()):
            return []
        return await self.store.in_thread(self.validate_pending, now)

    async def run(self, stop: asyncio.Event) -> None:
        """Check at each beat of the control cycle, until ``stop`` is set."""
        assert self.bus is not None, "the automatic VEE runs on a bus"
        async with aclosing(cycle_beats(self.bus, self.site, stop)) as beats:
            async for _ in beats:
                await self.pump()
