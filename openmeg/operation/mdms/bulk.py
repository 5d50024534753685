"""Readings in columns, checked and stored a whole batch at a time: the path of the AMI's
readings messages into the MDMS. A batch is many messages: each message is checked alone (a
bad one is refused alone), the good ones are stored in one transaction. Idempotent as
``MeterReadings.ingest``: a reading already stored with the same value changes nothing; with
another value it is kept aside as a conflict, never written over."""

from __future__ import annotations

from collections.abc import Set
from dataclasses import dataclass
from datetime import UTC, datetime

import numpy as np
import sqlalchemy as sa

from openmeg.core.messages import MeterReadings, ReadingsBatch
from openmeg.core.store import Store
from openmeg.operation.mdms.store import CHANNELS, INTERVAL, IngestReport, conflicts, readings

STEP_S = int(INTERVAL.total_seconds())


@dataclass(frozen=True, kw_only=True)
class Columns:
    """Readings as arrays: meter and channel (str), interval start (epoch s), kWh."""

    meter: np.ndarray
    channel: np.ndarray
    start_s: np.ndarray
    value: np.ndarray
    source: np.ndarray

    def __len__(self) -> int:
        return len(self.meter)


def columns_of(msg: MeterReadings | ReadingsBatch, source: str) -> Columns:
    """The readings of one message as columns."""
    if isinstance(msg, ReadingsBatch):
        meter, channel = msg.meter, msg.channel
        starts, values = msg.interval_start, msg.value_kwh
        n = len(meter)
    else:
        n = len(msg.readings)
        meter, channel = [msg.meter] * n, [msg.channel] * n
        starts = [r.interval_start for r in msg.readings]
        values = [r.value_kwh for r in msg.readings]
    return Columns(
        meter=np.array(meter, dtype=object),
        channel=np.array(channel, dtype=object),
        start_s=np.array([_epoch(t) for t in starts], dtype=np.int64),
        value=np.array(values, dtype=float),
        source=np.full(n, source, dtype=object),
    )


def _epoch(t: datetime) -> int:
    return int(t.timestamp()) if t.tzinfo is not None else int(t.replace(tzinfo=UTC).timestamp())


def problems(cols: Columns, *, meters: Set[str], now: datetime) -> list[str]:
    """What is wrong with a message's readings, reading by reading (none when all is well)."""
    out: list[str] = []
    known = np.fromiter((m in meters for m in cols.meter), dtype=bool, count=len(cols))
    for i in np.flatnonzero(~known)[:5]:
        out.append(f"reading {i + 1}: unknown meter {cols.meter[i]!r}")
    bad_channel = ~np.isin(cols.channel, CHANNELS)
    for i in np.flatnonzero(bad_channel)[:5]:
        out.append(f"reading {i + 1}: channel {cols.channel[i]!r}; accepted: {', '.join(CHANNELS)}")
    for i in np.flatnonzero(cols.start_s % STEP_S)[:5]:
        at = _iso(cols.start_s[i])
        out.append(f"reading {i + 1}: interval start {at} is not on a 15-minute boundary")
    for i in np.flatnonzero(cols.start_s > now.timestamp() + STEP_S)[:5]:
        out.append(f"reading {i + 1}: interval start {_iso(cols.start_s[i])} is in the future")
    for i in np.flatnonzero(~np.isfinite(cols.value))[:5]:
        out.append(f"reading {i + 1}: value {cols.value[i]!r} is not a finite number")
    if len(cols) and _first(cols).sum() < len(cols):
        out.append("readings repeat one (meter, channel, interval start)")
    return out


def _iso(epoch_s: int) -> str:
    return datetime.fromtimestamp(int(epoch_s), UTC).isoformat()


def _keys(cols: Columns) -> np.ndarray:
    return np.array(
        [
            f"{m}\x00{c}\x00{s}"
            for m, c, s in zip(cols.meter, cols.channel, cols.start_s, strict=True)
        ],
        dtype=object,
    )


def _first(cols: Columns) -> np.ndarray:
    """Which readings are the first of their (meter, channel, interval start)."""
    _, first = np.unique(_keys(cols), return_index=True)
    mask = np.zeros(len(cols), dtype=bool)
    mask[first] = True
    return mask


def concat(parts: list[Columns]) -> Columns:
    return Columns(
        **{
            name: np.concatenate([getattr(p, name) for p in parts])
            for name in ("meter", "channel", "start_s", "value", "source")
        }
    )


def take(cols: Columns, mask: np.ndarray) -> Columns:
    return Columns(
        meter=cols.meter[mask],
        channel=cols.channel[mask],
        start_s=cols.start_s[mask],
        value=cols.value[mask],
        source=cols.source[mask],
    )


def store_columns(store: Store, cols: Columns, now: datetime) -> IngestReport:
    """Store checked readings in one transaction: the new ones inserted, those already there
    compared (the same value: a duplicate; another: a conflict kept aside)."""
    report = IngestReport()
    if not len(cols):
        return report
    first = _first(cols)
    fresh = take(cols, first)
    starts = [datetime.fromtimestamp(int(s), UTC) for s in fresh.start_s]
    rows = [
        {
            "meter": m,
            "channel": c,
            "interval_start": t,
            "value_kwh": float(v),
            "source": src,
            "received_at": now,
        }
        for m, c, t, v, src in zip(
            fresh.meter, fresh.channel, starts, fresh.value, fresh.source, strict=True
        )
    ]
    t = readings.c
    stmt = store.insert_ignore(readings, ["meter", "channel", "interval_start"]).returning(
        t.meter, t.channel, t.interval_start
    )
    with store.engine.begin() as conn:
        inserted = conn.execute(stmt, rows).all()
        report.new = len(inserted)
        if report.new == len(fresh) and first.all():
            return report
        new_keys = {f"{m}\x00{c}\x00{_epoch(s)}" for m, c, s in inserted}
        keys = _keys(cols)
        offered_again = ~first | np.array([k not in new_keys for k in keys], dtype=bool)
        again = take(cols, offered_again)
        stored = _stored_values(conn, again)
        clash = []
        for m, c, s, v, src in zip(
            again.meter, again.channel, again.start_s, again.value, again.source, strict=False
        ):
            had = stored[f"{m}\x00{c}\x00{s}"]
            if abs(had - v) <= 1e-9:
                report.duplicates += 1
                continue
            at = datetime.fromtimestamp(int(s), UTC)
            clash.append(
                {
                    "meter": m,
                    "channel": c,
                    "interval_start": at,
                    "stored_kwh": had,
                    "offered_kwh": float(v),
                    "source": src,
                    "received_at": now,
                }
            )
            report.conflicts.append((m, c, at, had, float(v)))
        if clash:
            conn.execute(conflicts.insert(), clash)
    return report


def _stored_values(conn: sa.Connection, cols: Columns) -> dict[str, float]:
    """The stored kWh of the readings of ``cols``, by key."""
    t = readings.c
    lo, hi = int(cols.start_s.min()), int(cols.start_s.max())
    rows = conn.execute(
        sa.select(t.meter, t.channel, t.interval_start, t.value_kwh).where(
            t.meter.in_(sorted(set(cols.meter))),
            t.interval_start >= datetime.fromtimestamp(lo, UTC),
            t.interval_start <= datetime.fromtimestamp(hi, UTC),
        )
    ).all()
    return {f"{m}\x00{c}\x00{_epoch(s)}": float(v) for m, c, s, v in rows}
