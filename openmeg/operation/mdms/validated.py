"""Validated readings on top of the raw ones. Only what VEE or a person changed is stored: an
estimated or edited interval is a version (and a later change of it a later version); nothing is
overwritten and raw readings stay as they came. The validated series is the raw reading overlaid
by the newest version of each interval. A VEE status per (meter, channel, local day) records the
raw revision it validated, so that a day whose readings changed since is validated again."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Protocol

import numpy as np
import pandas as pd
import sqlalchemy as sa

from openmeg.core.audit import AuditLog
from openmeg.core.errors import OpenMegError
from openmeg.core.store import Store, as_utc, metadata
from openmeg.operation.mdms import raw_arrays
from openmeg.operation.mdms.store import INTERVAL, MeterReadings
from openmeg.operation.mdms.vee import VeeConfig
from openmeg.operation.mdms.vee_arrays import ESTIMATE_ON as ESTIMATE_ON
from openmeg.operation.mdms.vee_arrays import GOOD
from openmeg.operation.mdms.vee_matrix import Registers

validated = sa.Table(
    "validated_readings",
    metadata,
    sa.Column("meter", sa.String(64), nullable=False),
    sa.Column("channel", sa.String(16), nullable=False),
    sa.Column("interval_start", sa.DateTime(timezone=True), nullable=False),
    sa.Column("version", sa.Integer, nullable=False),
    sa.Column("value_kwh", sa.Float, nullable=False),
    sa.Column("quality", sa.String(16), nullable=False),
    sa.Column("method", sa.String(32), nullable=False),
    sa.Column("user", sa.String(64), nullable=False),
    sa.Column("reason", sa.Text, nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint("meter", "channel", "interval_start", "version"),
)

vee_flags = sa.Table(
    "vee_flag_runs",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("meter", sa.String(64), nullable=False),
    sa.Column("channel", sa.String(16), nullable=False),
    sa.Column("interval_start", sa.DateTime(timezone=True), nullable=False),
    sa.Column("intervals", sa.Integer, nullable=False),
    sa.Column("rule", sa.String(32), nullable=False),
    sa.Column("detail", sa.Text, nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
)
"""What VEE's rules flagged, a row per run of ``intervals`` consecutive intervals from
``interval_start`` with the same rule and detail (the flags of the latest run over them)."""

vee_status = sa.Table(
    "vee_status",
    metadata,
    sa.Column("meter", sa.String(64), nullable=False),
    sa.Column("channel", sa.String(16), nullable=False),
    sa.Column("day", sa.String(10), nullable=False),
    sa.Column("raw_revision", sa.BigInteger, nullable=False),
    sa.Column("validated_at", sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint("meter", "channel", "day"),
)
"""``day``: the local date (ISO) in the site's time zone; ``raw_revision``: the sum of the
revisions of the UTC days of raw readings it overlaps, when VEE validated it."""

QUALITY = ("missing", "good", "estimated", "edited")
"""Quality codes of :meth:`ValidatedReadings.arrays` (index into this tuple)."""
STEP = pd.Timedelta(INTERVAL)


class IntervalSeries(Protocol):
    """Interval energy by meter channel: the validated readings (``ValidatedReadings``), or
    the raw ones (``MeterReadings``) where raw is what is wanted."""

    def series(self, meter: str, channel: str, start: datetime, end: datetime) -> pd.Series: ...

    def matrix(
        self, meters: list[str], channel: str, start: datetime, end: datetime
    ) -> pd.DataFrame: ...


class EditError(OpenMegError):
    """A manual edit was refused."""


@dataclass(frozen=True, kw_only=True)
class VeeReport:
    flags: pd.DataFrame
    new_versions: int
    estimated: int


@dataclass(frozen=True, kw_only=True)
class Versions:
    """The newest stored version of each interval that has one, as parallel arrays: matrix
    row and column, version, kWh, quality code (into ``QUALITY``), method, user and reason."""

    row: np.ndarray
    col: np.ndarray
    version: np.ndarray
    value: np.ndarray
    quality: np.ndarray
    method: np.ndarray
    user: np.ndarray
    reason: np.ndarray


def grid(start: datetime, end: datetime) -> tuple[pd.Timestamp, int]:
    """The first interval start at or after ``start`` and the number of intervals to ``end``."""
    first = pd.Timestamp(as_utc(start)).ceil(STEP)
    return first, max(0, -(-(pd.Timestamp(as_utc(end)) - first) // STEP))


class ValidatedReadings:
    def __init__(self, store: Store, site: str) -> None:
        self.store = store
        self.site = site
        self.raw = MeterReadings(store)
        metadata.create_all(store.engine, tables=[validated, vee_flags, vee_status])

    def versions(self, meters: list[str], channel: str, start: pd.Timestamp, n: int) -> Versions:
        """The newest version of every interval of ``meters`` that has one, ``n`` intervals
        from ``start`` (rows as in ``meters``, columns from ``start``)."""
        t = validated.c
        end = (start + n * STEP).to_pydatetime()
        rows: list[tuple[object, ...]] = []
        with self.store.engine.connect() as conn:
            for lo in range(0, len(meters), 500):
                q = sa.select(
                    t.meter,
                    t.interval_start,
                    t.version,
                    t.value_kwh,
                    t.quality,
                    t.method,
                    t.user,
                    t.reason,
                ).where(
                    t.meter.in_(meters[lo : lo + 500]),
                    t.channel == channel,
                    t.interval_start >= start.to_pydatetime(),
                    t.interval_start < end,
                )
                rows += [tuple(r) for r in conn.execute(q)]
        cols = list(zip(*rows, strict=True)) if rows else [()] * 8
        where = {m: i for i, m in enumerate(meters)}
        row = np.array([where[m] for m in cols[0]], np.int64)
        at = pd.to_datetime(list(cols[1]), utc=True).as_unit("ns").asi8
        col = (at - start.value) // STEP.value
        version = np.array(cols[2], np.int64)
        order = np.lexsort((version, col, row))
        cell = (row * max(n, 1) + col)[order]
        last = order[np.append(cell[1:] != cell[:-1], True)] if len(order) else order
        code = {q: i for i, q in enumerate(QUALITY)}
        return Versions(
            row=row[last],
            col=col[last],
            version=version[last],
            value=np.array(cols[3], float)[last],
            quality=np.array([code[q] for q in cols[4]], np.int8)[last],
            method=np.array(cols[5], dtype=object)[last],
            user=np.array(cols[6], dtype=object)[last],
            reason=np.array(cols[7], dtype=object)[last],
        )

    def arrays(
        self, meters: list[str], channel: str, start: datetime, end: datetime
    ) -> tuple[np.ndarray, np.ndarray]:
        """The validated series of ``meters`` from ``start`` to ``end`` (15-minute boundaries):
        kWh float64 [n_meters, n_intervals] (NaN where there is nothing) and quality codes
        int8 of the same shape (into ``QUALITY``: 0 missing, 1 good, 2 estimated, 3 edited)."""
        values, quality, _ = self.arrays_versions(meters, channel, start, end)
        return values, quality

    def arrays_versions(
        self, meters: list[str], channel: str, start: datetime, end: datetime
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """What :meth:`arrays` gives, and the version of each interval, int64 of the same
        shape (0: the raw reading), from the same read of the versions."""
        first, n = grid(start, end)
        values = raw_arrays.window(self.raw, meters, channel, first, n)
        quality = np.where(np.isnan(values), 0, GOOD).astype(np.int8)
        v = self.versions(meters, channel, first, n)
        values[v.row, v.col] = np.where(v.quality == GOOD, values[v.row, v.col], v.value)
        quality[v.row, v.col] = np.where(np.isnan(values[v.row, v.col]), 0, v.quality)
        version = np.zeros(values.shape, np.int64)
        version[v.row, v.col] = v.version
        return values, quality, version

    def series(self, meter: str, channel: str, start: datetime, end: datetime) -> pd.Series:
        """The validated kWh of one channel by UTC interval start, intervals with nothing left
        out: what ``MeterReadings.series`` gives of the raw readings."""
        values, _ = self.arrays([meter], channel, start, end)
        first, n = grid(start, end)
        s = pd.Series(values[0], index=pd.date_range(first, periods=n, freq=STEP))
        return s[s.notna()]

    def matrix(
        self, meters: list[str], channel: str, start: datetime, end: datetime
    ) -> pd.DataFrame:
        """The validated kWh of many meters' channel: UTC interval start (rows) x meter
        (columns), NaN where there is nothing; what ``MeterReadings.matrix`` gives of the raw."""
        values, _ = self.arrays(list(meters), channel, start, end)
        first, n = grid(start, end)
        idx = pd.date_range(first, periods=n, freq=STEP)
        return pd.DataFrame(values.T, index=idx, columns=list(meters))

    def latest(self, meter: str, channel: str, start: datetime, end: datetime) -> pd.DataFrame:
        """The validated series of one channel: the newest version of each interval, or the raw
        reading (version 0, ``good``, ``measured``) where there is none."""
        first, n = grid(start, end)
        raw = raw_arrays.window(self.raw, [meter], channel, first, n)[0]
        v = self.versions([meter], channel, first, n)
        version = np.zeros(n, np.int64)
        quality = np.full(n, "good", dtype=object)
        method = np.full(n, "measured", dtype=object)
        user, reason = np.full(n, "", dtype=object), np.full(n, "", dtype=object)
        value = raw.copy()
        version[v.col], method[v.col], user[v.col], reason[v.col] = (
            v.version,
            v.method,
            v.user,
            v.reason,
        )
        quality[v.col] = np.array(QUALITY, dtype=object)[v.quality]
        value[v.col] = np.where(v.quality == GOOD, raw[v.col], v.value)
        keep = ~np.isnan(value)
        return pd.DataFrame(
            {
                "interval_start": pd.to_datetime(
                    first.value + np.arange(n)[keep] * STEP.value, utc=True
                ),
                "version": version[keep],
                "value_kwh": value[keep],
                "quality": quality[keep],
                "method": method[keep],
                "user": user[keep],
                "reason": reason[keep],
            }
        )

    def flags(self, meter: str, channel: str, start: datetime, end: datetime) -> pd.DataFrame:
        """The flags of one channel, an interval a row: ``interval_start, rule, detail``,
        sorted by interval start and rule."""
        f = vee_flags.c
        first, n = grid(start, end)
        q = sa.select(f.interval_start, f.intervals, f.rule, f.detail).where(
            f.meter == meter,
            f.channel == channel,
            f.interval_start >= first.to_pydatetime(),
            f.interval_start < (first + n * STEP).to_pydatetime(),
        )
        with self.store.engine.connect() as conn:
            rows = conn.execute(q).all()
        at = pd.to_datetime([r[0] for r in rows], utc=True).as_unit("ns").asi8
        size = np.array([r[1] for r in rows], np.int64)
        run = np.repeat(np.arange(len(rows)), size)
        step = np.arange(int(size.sum())) - np.repeat(np.cumsum(size) - size, size)
        frame = pd.DataFrame(
            {
                "interval_start": pd.to_datetime(at[run] + step * STEP.value, utc=True),
                "rule": np.array([r[2] for r in rows], dtype=object)[run],
                "detail": np.array([r[3] for r in rows], dtype=object)[run],
            }
        )
        return frame.sort_values(["interval_start", "rule"], ignore_index=True)

    def status(self, meters: list[str], channel: str, days: list[str]) -> np.ndarray:
        """The raw revision VEE validated for each (meter, local day), -1 where never:
        int64 [n_meters, n_days]."""
        t = vee_status.c
        out = np.full((len(meters), len(days)), -1, np.int64)
        found: list[tuple[str, str, int]] = []
        with self.store.engine.connect() as conn:
            for lo in range(0, len(meters), 500):
                q = sa.select(t.meter, t.day, t.raw_revision).where(
                    t.meter.in_(meters[lo : lo + 500]),
                    t.channel == channel,
                    t.day >= min(days, default=""),
                    t.day <= max(days, default=""),
                )
                found += conn.execute(q).all()
        if found:
            m, d, rev = (list(x) for x in zip(*found, strict=True))
            row, col = pd.Index(meters).get_indexer(m), pd.Index(days).get_indexer(d)
            there = col >= 0
            out[row[there], col[there]] = np.array(rev, np.int64)[there]
        return out

    def store_run(
        self,
        *,
        meters: list[str],
        channel: str,
        start: datetime,
        end: datetime,
        versions: list[dict[str, object]],
        flags: list[dict[str, object]],
        status: list[dict[str, object]],
    ) -> None:
        """In one transaction: the new versions, the flags of ``meters`` over ``[start, end)``
        in place of those of earlier runs, and the status of the days validated."""
        f, s = vee_flags.c, vee_status.c
        days = sorted({str(r["day"]) for r in status})
        with self.store.engine.begin() as conn:
            for lo in range(0, len(meters), 500):
                part = meters[lo : lo + 500]
                conn.execute(
                    vee_flags.delete().where(
                        f.meter.in_(part),
                        f.channel == channel,
                        f.interval_start >= as_utc(start),
                        f.interval_start < as_utc(end),
                    )
                )
                if days:
                    conn.execute(
                        vee_status.delete().where(
                            s.meter.in_(part), s.channel == channel, s.day.in_(days)
                        )
                    )
            for table, rows in ((validated, versions), (vee_flags, flags), (vee_status, status)):
                if rows:
                    conn.execute(table.insert(), rows)

    def run_vee(
        self,
        meter: str,
        channel: str,
        start: datetime,
        end: datetime,
        cfg: VeeConfig,
        *,
        active: bool = True,
        registers: pd.Series | None = None,
        now: datetime | None = None,
    ) -> VeeReport:
        """Validate ``[start, end)`` of one channel, estimate what must be, store new versions
        only where an interval changed (``ValueError`` if it cannot be estimated)."""
        from openmeg.operation.mdms.vee_run import vee_channel

        regs = None
        if registers is not None:
            at = pd.DatetimeIndex(registers.index).tz_convert("UTC").as_unit("ns").asi8
            regs = Registers.of(np.zeros(len(at), np.int64), at, registers.to_numpy(float))
        [r] = vee_channel(
            self,
            [meter],
            channel,
            start,
            end,
            cfg,
            active=active,
            registers=regs,
            now=now or datetime.now(UTC),
        )
        if r.problem:
            raise ValueError(r.problem)
        assert r.flags is not None
        return VeeReport(flags=r.flags, new_versions=r.new_versions, estimated=r.estimated)

    def edit(
        self,
        meter: str,
        channel: str,
        interval_start: datetime,
        value_kwh: float,
        *,
        user: str,
        reason: str,
        audit: AuditLog,
        now: datetime | None = None,
    ) -> int:
        """A manual edit: a new version flagged ``edited``, with who and why, in the audit trail."""
        if not user.strip() or not reason.strip():
            raise EditError("an edit needs the user who makes it and the reason")
        if value_kwh != value_kwh or value_kwh < 0:
            raise EditError(f"{value_kwh} kWh cannot be an interval's energy")
        now = now or datetime.now(UTC)
        ts = pd.Timestamp(interval_start).tz_convert("UTC")
        current = self.latest(
            meter, channel, ts.to_pydatetime(), (ts + pd.Timedelta(minutes=1)).to_pydatetime()
        )
        version = int(current["version"].iloc[0]) + 1 if not current.empty else 1
        before = float(current["value_kwh"].iloc[0]) if not current.empty else float("nan")
        with self.store.engine.begin() as conn:
            conn.execute(
                validated.insert(),
                {
                    "meter": meter,
                    "channel": channel,
                    "interval_start": ts.to_pydatetime(),
                    "version": version,
                    "value_kwh": value_kwh,
                    "quality": "edited",
                    "method": "manual",
                    "user": user,
                    "reason": reason,
                    "created_at": now,
                },
            )
        self.store.add_event(
            ts=now,
            site=self.site,
            kind="meter_edit",
            source=user,
            code=f"{meter}/{channel}",
            text=f"{ts.isoformat()}: {before:g} -> {value_kwh:g} kWh ({reason})",
        )
        audit.append(
            ts=now,
            actor=user,
            action="meter_edit",
            target=f"{meter}/{channel}/{ts.isoformat()}",
            detail={
                "before_kwh": None if before != before else before,
                "after_kwh": value_kwh,
                "reason": reason,
                "version": version,
            },
        )
        return version
