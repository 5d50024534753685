"""MDMS storage: raw readings kept unchanged forever, idempotent by (meter, channel, interval
start); a duplicate with another value is refused and kept aside as a conflict, never written
over. A batch is checked whole before anything is written: one bad row and nothing is stored."""

from __future__ import annotations

from collections.abc import Set
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd
import sqlalchemy as sa

from openmeg.core.errors import OpenMegError
from openmeg.core.store import Store, as_utc, metadata

CHANNELS = ("import", "export")
INTERVAL = timedelta(minutes=15)

readings = sa.Table(
    "meter_readings",
    metadata,
    sa.Column("meter", sa.String(64), nullable=False),
    sa.Column("channel", sa.String(16), nullable=False),
    sa.Column("interval_start", sa.DateTime(timezone=True), nullable=False),
    sa.Column("value_kwh", sa.Float, nullable=False),
    sa.Column("source", sa.String(128), nullable=False),
    sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint("meter", "channel", "interval_start"),
)

conflicts = sa.Table(
    "meter_reading_conflicts",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("meter", sa.String(64), nullable=False),
    sa.Column("channel", sa.String(16), nullable=False),
    sa.Column("interval_start", sa.DateTime(timezone=True), nullable=False),
    sa.Column("stored_kwh", sa.Float, nullable=False),
    sa.Column("offered_kwh", sa.Float, nullable=False),
    sa.Column("source", sa.String(128), nullable=False),
    sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
)


register_reads = sa.Table(
    "meter_register_reads",
    metadata,
    sa.Column("meter", sa.String(64), nullable=False),
    sa.Column("channel", sa.String(16), nullable=False),
    sa.Column("read_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("value_kwh", sa.Float, nullable=False),
    sa.PrimaryKeyConstraint("meter", "channel", "read_at"),
)


class IngestError(OpenMegError):
    """A batch of readings was refused whole; ``problems`` says row by row why."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        shown = "; ".join(problems[:5]) + (
            f"; and {len(problems) - 5} more" if len(problems) > 5 else ""
        )
        super().__init__(f"{len(problems)} problem(s), nothing stored: {shown}")


@dataclass(kw_only=True)
class IngestReport:
    new: int = 0
    duplicates: int = 0
    conflicts: list[tuple[str, str, datetime, float, float]] = field(default_factory=list)


def check_batch(
    frame: pd.DataFrame, *, meters: Set[str], now: datetime, source: str
) -> pd.DataFrame:
    """The batch in canonical form (UTC, float), or ``IngestError`` naming every bad row."""
    need = {"meter", "channel", "interval_start", "value_kwh"}
    if missing := need - set(frame.columns):
        raise IngestError([f"{source}: columns missing: {', '.join(sorted(missing))}"])
    problems: list[str] = []
    out = frame[list(need)].copy()
    starts = pd.to_datetime(out["interval_start"], utc=True, errors="coerce")
    values = pd.to_numeric(out["value_kwh"], errors="coerce")
    for i, (meter, channel, start, value, raw) in enumerate(
        zip(out["meter"], out["channel"], starts, values, out["interval_start"], strict=True)
    ):
        where = f"{source} row {i + 1}"
        if meter not in meters:
            problems.append(f"{where}: unknown meter {meter!r}")
        if channel not in CHANNELS:
            problems.append(f"{where}: channel {channel!r}; accepted: {', '.join(CHANNELS)}")
        if pd.isna(start):
            problems.append(f"{where}: interval start {raw!r} is not a time")
        elif start.value % int(INTERVAL.total_seconds() * 1e9):
            problems.append(
                f"{where}: interval start {start.isoformat()} is not on a 15-minute boundary"
            )
        elif start > pd.Timestamp(now) + pd.Timedelta(INTERVAL):
            problems.append(f"{where}: interval start {start.isoformat()} is in the future")
        if pd.isna(value) or not np.isfinite(value):
            problems.append(f"{where}: value {frame['value_kwh'].iloc[i]!r} is not a number")
    dup = out.assign(interval_start=starts).duplicated(
        ["meter", "channel", "interval_start"], keep=False
    )
    if dup.any():
        rows = ", ".join(str(i + 1) for i in np.flatnonzero(dup.to_numpy())[:10])
        problems.append(f"{source}: rows {rows} repeat one (meter, channel, interval start)")
    if problems:
        raise IngestError(problems)
    out["interval_start"] = starts
    out["value_kwh"] = values.astype(float)
    return out


class MeterReadings:
    """Raw interval readings in the store."""

    def __init__(self, store: Store) -> None:
        self.store = store
        metadata.create_all(store.engine, tables=[readings, conflicts, register_reads])

    def ingest(
        self,
        frame: pd.DataFrame,
        *,
        meters: Set[str],
        source: str,
        received_at: datetime | None = None,
    ) -> IngestReport:
        """Store a batch in one transaction; report new rows, duplicates and conflicts."""
        now = as_utc(received_at) if received_at is not None else datetime.now(UTC)
        batch = check_batch(frame, meters=meters, now=now, source=source)
        report = IngestReport()
        if batch.empty:
            return report
        t = readings.c
        lo, hi = batch["interval_start"].min(), batch["interval_start"].max()
        with self.store.engine.begin() as conn:
            existing = pd.DataFrame(
                conn.execute(
                    sa.select(t.meter, t.channel, t.interval_start, t.value_kwh).where(
                        t.meter.in_(sorted(set(batch["meter"]))),
                        t.interval_start >= lo.to_pydatetime(),
                        t.interval_start <= hi.to_pydatetime(),
                    )
                ).all(),
                columns=["meter", "channel", "interval_start", "stored"],
            )
            if not existing.empty:
                existing["interval_start"] = pd.to_datetime(existing["interval_start"], utc=True)
            existing["stored"] = pd.to_numeric(existing["stored"])
            if existing.empty:
                existing["interval_start"] = pd.to_datetime(existing["interval_start"], utc=True)
            merged = batch.merge(existing, how="left", on=["meter", "channel", "interval_start"])
            merged["stored"] = merged["stored"].astype(float)
            is_new = merged["stored"].isna()
            same = ~is_new & np.isclose(merged["value_kwh"], merged["stored"], rtol=0, atol=1e-9)
            clash = merged[~is_new & ~same]
            fresh = merged[is_new]
            if not fresh.empty:
                conn.execute(
                    readings.insert(),
                    [
                        {
                            "meter": r.meter,
                            "channel": r.channel,
                            "interval_start": r.interval_start.to_pydatetime(),
                            "value_kwh": r.value_kwh,
                            "source": source,
                            "received_at": now,
                        }
                        for r in fresh.itertuples()
                    ],
                )
            if not clash.empty:
                conn.execute(
                    conflicts.insert(),
                    [
                        {
                            "meter": r.meter,
                            "channel": r.channel,
                            "interval_start": r.interval_start.to_pydatetime(),
                            "stored_kwh": r.stored,
                            "offered_kwh": r.value_kwh,
                            "source": source,
                            "received_at": now,
                        }
                        for r in clash.itertuples()
                    ],
                )
        report.new = len(fresh)
        report.duplicates = int(same.sum())
        report.conflicts = [
            (r.meter, r.channel, r.interval_start.to_pydatetime(), r.stored, r.value_kwh)
            for r in clash.itertuples()
        ]
        return report

    def series(self, meter: str, channel: str, start: datetime, end: datetime) -> pd.Series:
        """Raw readings of one channel, ``start <= interval start < end``, kWh by UTC start."""
        t = readings.c
        q = (
            sa.select(t.interval_start, t.value_kwh)
            .where(
                t.meter == meter,
                t.channel == channel,
                t.interval_start >= as_utc(start),
                t.interval_start < as_utc(end),
            )
            .order_by(t.interval_start)
        )
        return self._series(q)

    def long_frame(self, meters: list[str], start: datetime, end: datetime) -> pd.DataFrame:
        """Raw readings of every channel of ``meters``, ``start <= interval start < end``, one
        row per reading (meter, channel, interval_start, value_kwh), meter by meter."""
        frames = []
        for m in meters:
            for channel in CHANNELS:
                s = self.series(m, channel, start, end)
                frames.append(
                    pd.DataFrame(
                        {
                            "meter": m,
                            "channel": channel,
                            "interval_start": s.index,
                            "value_kwh": s.to_numpy(),
                        }
                    )
                )
        return pd.concat(frames, ignore_index=True)

    def matrix(
        self, meters: list[str], channel: str, start: datetime, end: datetime
    ) -> pd.DataFrame:
        """Raw readings of many meters' channel in one query: kWh by UTC interval start
        (rows) and meter (columns); NaN where a meter has no reading."""
        t = readings.c
        q = sa.select(t.interval_start, t.meter, t.value_kwh).where(
            t.meter.in_(meters),
            t.channel == channel,
            t.interval_start >= as_utc(start),
            t.interval_start < as_utc(end),
        )
        with self.store.engine.connect() as conn:
            rows = conn.execute(q).all()
        frame = pd.DataFrame(rows, columns=["interval_start", "meter", "value_kwh"])
        frame["interval_start"] = pd.to_datetime(frame["interval_start"], utc=True)
        return frame.pivot(index="interval_start", columns="meter", values="value_kwh")

    def add_registers(self, rows: list[tuple[str, str, datetime, float]]) -> int:
        """Store register reads ``(meter, channel, read_at, kWh)``; a read already there stays."""
        if not rows:
            return 0
        t = register_reads
        values = [
            {"meter": m, "channel": c, "read_at": as_utc(at), "value_kwh": v}
            for m, c, at, v in rows
        ]
        stmt = self.store.insert_ignore(t, ["meter", "channel", "read_at"]).returning(t.c.read_at)
        with self.store.engine.begin() as conn:
            return len(conn.execute(stmt, values).all())

    def registers(self, meter: str, channel: str, start: datetime, end: datetime) -> pd.Series:
        """Register reads (cumulative kWh) with ``start <= read_at <= end``, by UTC instant."""
        t = register_reads.c
        q = (
            sa.select(t.read_at, t.value_kwh)
            .where(
                t.meter == meter,
                t.channel == channel,
                t.read_at >= as_utc(start),
                t.read_at <= as_utc(end),
            )
            .order_by(t.read_at)
        )
        return self._series(q)

    def _series(self, query: sa.Select[Any]) -> pd.Series:
        """The rows ``(instant, kWh)`` of a query as a series by UTC instant."""
        with self.store.engine.connect() as conn:
            rows = conn.execute(query).all()
        index = pd.DatetimeIndex([pd.Timestamp(r[0]) for r in rows])
        index = index.tz_localize("UTC") if index.tz is None else index.tz_convert("UTC")
        return pd.Series([r[1] for r in rows], index=index, dtype=float)

    def conflicts(self, meter: str | None = None) -> list[dict[str, object]]:
        q = sa.select(conflicts).order_by(conflicts.c.id)
        if meter is not None:
            q = q.where(conflicts.c.meter == meter)
        with self.store.engine.connect() as conn:
            return [dict(r._mapping) for r in conn.execute(q)]

    def count(self) -> int:
        with self.store.engine.connect() as conn:
            return int(conn.execute(sa.select(sa.func.count()).select_from(readings)).scalar_one())
