"""MDMS storage: raw readings kept unchanged forever, idempotent by (meter, channel, interval
start); a duplicate with another value is refused and kept aside as a conflict, never written
over. A batch is checked whole before anything is written: one bad row and nothing is stored.

The readings live in day rows (``day_rows``: a row per meter, channel and UTC day holding its
96 intervals); files and the AMI's messages go through the same check and the same writer
(``bulk``). ``MeterReadings.arrays`` is the fast read: [meters x intervals] in one query."""

from __future__ import annotations

from collections.abc import Set
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pandas as pd
import sqlalchemy as sa

from openmeg.core.store import Store, as_utc, metadata
from openmeg.operation.mdms import stage
from openmeg.operation.mdms.bulk import Columns, findings, repeated, store_columns
from openmeg.operation.mdms.day_rows import (
    CHANNELS,
    DAY_S,
    INTERVAL,
    SLOTS,
    STEP_S,
    IngestError,
    IngestReport,
    conflicts,
    day_rows,
)
from openmeg.operation.mdms.legacy import move_legacy_readings

__all__ = ["CHANNELS", "INTERVAL", "IngestError", "IngestReport", "MeterReadings", "check_batch"]

register_reads = sa.Table(
    "meter_register_reads",
    metadata,
    sa.Column("meter", sa.String(64), nullable=False),
    sa.Column("channel", sa.String(16), nullable=False),
    sa.Column("read_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("value_kwh", sa.Float, nullable=False),
    sa.PrimaryKeyConstraint("meter", "channel", "read_at"),
)


def check_batch(
    frame: pd.DataFrame,
    *,
    meters: Set[str],
    now: datetime,
    source: str,
    max_kwh: float | None = None,
) -> Columns:
    """The batch as checked columns, or ``IngestError`` naming every bad row (a negative value
    is accepted here: VEE flags it); ``max_kwh``: the most energy a meter of the site measures
    in one interval [kWh], the live ingest's bound (none: no bound)."""
    need = ["meter", "channel", "interval_start", "value_kwh"]
    if missing := set(need) - set(frame.columns):
        raise IngestError([f"{source}: columns missing: {', '.join(sorted(missing))}"])
    starts = pd.to_datetime(frame["interval_start"], utc=True, errors="coerce")
    values = pd.to_numeric(frame["value_kwh"], errors="coerce").to_numpy(dtype=float)
    ns = np.asarray(starts.dt.as_unit("ns").array.asi8)  # NaT: the smallest int64
    no_time, sub_second = starts.isna().to_numpy(), ns % 1_000_000_000 != 0
    no_value = ~np.isfinite(values)
    cols = Columns(
        meter=frame["meter"].to_numpy(dtype=object),
        channel=frame["channel"].to_numpy(dtype=object),
        start_s=np.where(no_time | sub_second, 0, ns // 1_000_000_000),
        value=np.where(no_value, 0.0, values),
        source=np.full(len(frame), source, dtype=object),
    )
    found = findings(cols, meters=meters, now=now, max_kwh=max_kwh, refuse_negative=False)
    raw_t, raw_v = frame["interval_start"], frame["value_kwh"]
    found += [
        (i, 2, f"interval start {raw_t.iloc[i]!r} is not a time")
        for i in np.flatnonzero(no_time).tolist()
    ]
    found += [
        (i, 2, f"interval start {starts.iloc[i].isoformat()} is not on a 15-minute boundary")
        for i in np.flatnonzero(sub_second & ~no_time).tolist()
    ]
    bad_values = np.flatnonzero(no_value).tolist()
    found += [(i, 4, f"value {_plain(raw_v.iloc[i])!r} is not a number") for i in bad_values]
    problems = [f"{source} row {i + 1}: {text}" for i, _, text in sorted(found)]
    if len(frame) and (twice := np.flatnonzero(repeated(cols) & ~no_time & ~sub_second)).size:
        rows = ", ".join(str(i + 1) for i in twice[:10])
        problems.append(f"{source}: rows {rows} repeat one (meter, channel, interval start)")
    if problems:
        raise IngestError(problems)
    return cols


def _plain(value: object) -> object:
    """A numpy scalar as the Python value it holds (shown ``nan``, not ``np.float64(nan)``)."""
    return value.item() if isinstance(value, np.generic) else value


def _boundary(ts: datetime, *, up: bool = True) -> int:
    """Epoch seconds of the first 15-minute boundary at or after ``ts`` (before, ``up=False``)."""
    s = as_utc(ts).timestamp()
    return int(-(-s // STEP_S) * STEP_S) if up else int(s // STEP_S * STEP_S)


class MeterReadings:
    """Raw interval readings in the store."""

    def __init__(self, store: Store) -> None:
        self.store = store
        metadata.create_all(store.engine, tables=[day_rows, conflicts, register_reads])
        move_legacy_readings(store)

    def ingest(
        self,
        frame: pd.DataFrame,
        *,
        meters: Set[str],
        source: str,
        received_at: datetime | None = None,
        max_kwh: float | None = None,
    ) -> IngestReport:
        """Store a batch in one transaction; report new rows, duplicates and conflicts;
        ``max_kwh``: the most a meter measures in 15 minutes [kWh] (``Site.meter_max_kw() *
        0.25``, as the live ingest checks it), a bigger value refuses the batch."""
        now = as_utc(received_at) if received_at is not None else datetime.now(UTC)
        cols = check_batch(frame, meters=meters, now=now, source=source, max_kwh=max_kwh)
        return store_columns(self.store, cols, now)

    def arrays(
        self, meters: list[str], channel: str, start: datetime, end: datetime
    ) -> tuple[np.ndarray, np.ndarray]:
        """Readings of ``meters``' ``channel`` with ``start <= interval start < end`` (both on
        15-minute boundaries), in one query: kWh float64 [meters, intervals] (NaN where
        missing), and the revision int64 [meters, UTC days touched] of each (meter, UTC day)
        row, 0 where none is stored (the first day is the UTC day of ``start``)."""
        lo, hi = _boundary(start), _boundary(end)
        if lo != as_utc(start).timestamp() or hi != as_utc(end).timestamp():
            raise ValueError(
                f"start {start.isoformat()} and end {end.isoformat()} must be interval starts"
                " (on the quarter hour: :00, :15, :30, :45)"
            )
        if hi < lo:
            raise ValueError(f"end {end.isoformat()} is before start {start.isoformat()}")
        return self._arrays(meters, channel, lo, hi)

    def _arrays(
        self, meters: list[str], channel: str, lo: int, hi: int
    ) -> tuple[np.ndarray, np.ndarray]:
        n = max(0, (hi - lo) // STEP_S)
        d0, d1 = lo // DAY_S, max(lo, hi - STEP_S) // DAY_S
        days = d1 - d0 + 1
        grid = np.full((len(meters), days, SLOTS), np.nan)
        revision = np.zeros((len(meters), days), dtype=np.int64)
        if meters and n:
            index = pd.Index(meters)
            if not index.is_unique:
                twice = sorted(set(index[index.duplicated()]))
                raise ValueError(f"each meter may be asked for once: {', '.join(twice)} repeat")
            with self.store.engine.connect() as conn:
                rows = stage.read(conn, self.store.dialect, list(meters), d0, d1, channel)
            m = index.get_indexer(rows.meter)
            grid[m, rows.day - d0] = rows.block.values
            revision[m, rows.day - d0] = rows.block.revision
        first = (lo - d0 * DAY_S) // STEP_S
        return grid.reshape(len(meters), days * SLOTS)[:, first : first + n], revision

    def revisions(
        self, meters: list[str], channel: str, start: datetime, end: datetime
    ) -> np.ndarray:
        """The revision int64 [meters, UTC days] of each (meter, UTC day) row with an interval
        in ``start <= interval start < end`` (0 where none is stored), without the values: the
        cheap way to find the days that changed since they were last read."""
        lo, hi = _boundary(start), max(_boundary(start), _boundary(end))
        d0, d1 = lo // DAY_S, max(lo, hi - STEP_S) // DAY_S
        out = np.zeros((len(meters), d1 - d0 + 1), dtype=np.int64)
        t = day_rows.c
        index = pd.Index(meters)
        with self.store.engine.connect() as conn:
            for i in range(0, len(meters), 5000):
                rows = conn.execute(
                    sa.select(t.meter, t.day, t.revision).where(
                        t.meter.in_(meters[i : i + 5000]),
                        t.channel == channel,
                        t.day.between(d0, d1),
                    )
                ).all()
                if rows:
                    meter, day, rev = zip(*rows, strict=True)
                    out[index.get_indexer(list(meter)), np.array(day) - d0] = rev
        return out

    def _index(self, lo: int, n: int) -> pd.DatetimeIndex:
        return pd.DatetimeIndex(
            pd.to_datetime(lo + STEP_S * np.arange(n, dtype=np.int64), unit="s", utc=True)
        )

    def series(self, meter: str, channel: str, start: datetime, end: datetime) -> pd.Series:
        """Raw readings of one channel, ``start <= interval start < end``, kWh by UTC start."""
        lo, hi = _boundary(start), max(_boundary(start), _boundary(end))
        [values], _ = self._arrays([meter], channel, lo, hi)
        there = ~np.isnan(values)
        return pd.Series(values[there], index=self._index(lo, len(values))[there], dtype=float)

    def long_frame(self, meters: list[str], start: datetime, end: datetime) -> pd.DataFrame:
        """Raw readings of every channel of ``meters``, ``start <= interval start < end``, one
        row per reading (meter, channel, interval_start, value_kwh), meter by meter."""
        lo, hi = _boundary(start), max(_boundary(start), _boundary(end))
        stack = np.stack([self._arrays(meters, c, lo, hi)[0] for c in CHANNELS], axis=1)
        m, c, t = np.nonzero(~np.isnan(stack))
        return pd.DataFrame(
            {
                "meter": np.array(meters, dtype=object)[m],
                "channel": np.array(CHANNELS, dtype=object)[c],
                "interval_start": self._index(lo, stack.shape[2])[t],
                "value_kwh": stack[m, c, t],
            }
        )

    def matrix(
        self, meters: list[str], channel: str, start: datetime, end: datetime
    ) -> pd.DataFrame:
        """Raw readings of many meters' channel in one query: kWh by UTC interval start
        (rows, every interval with ``start <= interval start < end``) and meter (columns, in
        the order given); NaN where a meter has no reading."""
        lo, hi = _boundary(start), max(_boundary(start), _boundary(end))
        values, _ = self._arrays(meters, channel, lo, hi)
        frame = pd.DataFrame(values.T, index=self._index(lo, values.shape[1]), columns=list(meters))
        frame.index.name, frame.columns.name = "interval_start", "meter"
        return frame

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
        """How many interval readings are stored."""
        q = sa.select(sa.func.coalesce(sa.func.sum(day_rows.c.n), 0))
        with self.store.engine.connect() as conn:
            return int(conn.execute(q).scalar_one())
