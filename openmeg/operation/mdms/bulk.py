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
from openmeg.core.store import Store, as_utc
from openmeg.operation.mdms.stage import insert_ignoring
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
        start_s=_epochs(starts),
        value=np.array(values, dtype=float),
        source=np.full(n, source, dtype=object),
    )


def _epochs(starts: list[datetime]) -> np.ndarray:
    """Epoch seconds of each instant (computed once for each distinct instant)."""
    seen: dict[datetime, int] = {}
    return np.array([seen.get(t) or seen.setdefault(t, _epoch(t)) for t in starts], np.int64)


def _epoch(t: datetime) -> int:
    return int(t.timestamp()) if t.tzinfo is not None else int(t.replace(tzinfo=UTC).timestamp())


def problems(
    cols: Columns, *, meters: Set[str], now: datetime, max_kwh: float | None = None
) -> list[str]:
    """What is wrong with a message's readings, reading by reading (none when all is well);
    ``max_kwh``: the most energy a meter can measure in one interval."""
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
        out.append(f"reading {i + 1}: value {float(cols.value[i])} is not a finite number")
    for i in np.flatnonzero(cols.value < 0)[:5]:
        out.append(f"reading {i + 1}: value {float(cols.value[i]):g} kWh is negative")
    if max_kwh is not None:
        for i in np.flatnonzero(cols.value > max_kwh)[:5]:
            out.append(
                f"reading {i + 1}: {float(cols.value[i]):g} kWh is more than a meter of this site "
                f"measures in 15 minutes ({max_kwh:g} kWh)"
            )
    if len(cols) and _first(cols).sum() < len(cols):
        out.append("readings repeat one (meter, channel, interval start)")
    return out


def _iso(epoch_s: int) -> str:
    return datetime.fromtimestamp(int(epoch_s), UTC).isoformat()


def _keys(cols: Columns) -> np.ndarray:
    """One integer per (meter, channel, interval start) of ``cols``."""
    _, meter = np.unique(cols.meter.astype(str), return_inverse=True)
    channel = (cols.channel == "export").astype(np.int64)
    keys: np.ndarray = (meter.astype(np.int64) * 2 + channel) * (1 << 40) + cols.start_s // STEP_S
    return keys


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
    """Store checked readings in one transaction: written in bulk, a reading already stored
    left as it is; when some were (a redelivery), those are compared (the same value: a
    duplicate; another: a conflict kept aside)."""
    report = IngestReport()
    if not len(cols):
        return report
    first = _first(cols)
    fresh, repeated = take(cols, first), take(cols, ~first)
    with store.engine.begin() as conn:
        report.new = insert_ignoring(conn, store.dialect, fresh, now)
        if report.new == len(fresh) and not len(repeated):
            return report
        again = take(cols, ~first) if report.new == len(fresh) else cols
        stored = _stored_rows(conn, again)
        offered = [
            (m, c, int(t), stored[(m, c, int(t))], float(v), src)
            for m, c, t, v, src, is_first in zip(
                again.meter,
                again.channel,
                again.start_s,
                again.value,
                again.source,
                _first(again) if again is cols else np.zeros(len(again), bool),
                strict=True,
            )
            if not is_first or stored[(m, c, int(t))][1] != now
        ]
        clash = []
        for m, c, t, (had, _), v, src in offered:
            if abs(had - v) <= 1e-9:
                report.duplicates += 1
                continue
            at = datetime.fromtimestamp(t, UTC)
            clash.append(
                {
                    "meter": m,
                    "channel": c,
                    "interval_start": at,
                    "stored_kwh": had,
                    "offered_kwh": v,
                    "source": src,
                    "received_at": now,
                }
            )
            report.conflicts.append((m, c, at, had, v))
        if clash:
            conn.execute(conflicts.insert(), clash)
    return report


def _stored_rows(
    conn: sa.Connection, cols: Columns
) -> dict[tuple[str, str, int], tuple[float, datetime]]:
    """The stored kWh and reception time of the readings of ``cols``, by (meter, channel,
    epoch s): a reading received at this batch's time was stored by this batch."""
    t = readings.c
    lo, hi = int(cols.start_s.min()), int(cols.start_s.max())
    out = {}
    meters = sorted(set(cols.meter))
    for i in range(0, len(meters), 5000):
        rows = conn.execute(
            sa.select(t.meter, t.channel, t.interval_start, t.value_kwh, t.received_at).where(
                t.meter.in_(meters[i : i + 5000]),
                t.interval_start >= datetime.fromtimestamp(lo, UTC),
                t.interval_start <= datetime.fromtimestamp(hi, UTC),
            )
        ).all()
        out.update({(m, c, _epoch(s)): (float(v), as_utc(at)) for m, c, s, v, at in rows})
    return out
