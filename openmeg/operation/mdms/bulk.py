"""Readings in columns, checked and stored a whole batch at a time: the one check and the one
writer of every path into the MDMS (the AMI's readings messages, files imported).

Checks run on whole arrays (``findings``). ``store_columns`` stores a checked batch in one
transaction: its readings grouped into day rows (``day_rows``), the rows it touches that are
already stored read in one query, merged in numpy (``day_merge``), and written back in bulk
(``stage``). Idempotent: a reading already stored with the same value changes nothing (a
duplicate); with another value it is kept aside as a conflict, never written over."""

from __future__ import annotations

from collections.abc import Iterator, Set
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cached_property

import numpy as np
import pandas as pd
import sqlalchemy as sa

from openmeg.core.messages import MeterReadings, ReadingsBatch
from openmeg.core.store import Store
from openmeg.operation.mdms import stage
from openmeg.operation.mdms.day_merge import BatchRows, Merged, batch_rows, merge, place
from openmeg.operation.mdms.day_rows import CHANNELS, STEP_S, IngestReport, conflicts


@dataclass(frozen=True, kw_only=True)
class Columns:
    """Readings as arrays: meter and channel (str), interval start (epoch s), kWh, source."""

    meter: np.ndarray
    channel: np.ndarray
    start_s: np.ndarray
    value: np.ndarray
    source: np.ndarray

    def __len__(self) -> int:
        return len(self.meter)

    @cached_property
    def meter_codes(self) -> tuple[np.ndarray, np.ndarray]:
        """A code per reading (-1 for no meter) and the meter of each code."""
        codes, names = pd.factorize(self.meter)
        return np.asarray(codes, dtype=np.int64), np.asarray(names, dtype=object)

    @cached_property
    def rows(self) -> BatchRows:
        """The day rows and slots of the readings (all on the 15-minute grid)."""
        code, names = self.meter_codes
        return batch_rows(code, names, self.channel == "export", self.start_s)


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


def _iso(epoch_s: int) -> str:
    return datetime.fromtimestamp(int(epoch_s), UTC).isoformat()


Finding = tuple[int, int, str]
"""(reading index, kind of check, what is wrong): sorted, the problems in reading order."""


def findings(
    cols: Columns,
    *,
    meters: Set[str],
    now: datetime,
    max_kwh: float | None = None,
    refuse_negative: bool = True,
    limit: int | None = None,
) -> list[Finding]:
    """What is wrong with each reading, checked on whole arrays (at most ``limit`` of each
    kind); ``max_kwh``: the most energy a meter measures in one interval; a negative value is
    refused unless ``refuse_negative`` is false (a file may hold one for VEE to flag)."""
    m_code, m_names = cols.meter_codes
    c_code, c_names = pd.factorize(cols.channel)
    known = np.append(np.array([m in meters for m in m_names], dtype=bool), False)[m_code]
    channel_ok = np.append(np.array([c in CHANNELS for c in c_names], dtype=bool), False)[c_code]
    checks: list[tuple[np.ndarray, str]] = [
        (~known, "unknown meter {m!r}"),
        (~channel_ok, "channel {c!r}; accepted: " + ", ".join(CHANNELS)),
        (cols.start_s % STEP_S != 0, "interval start {t} is not on a 15-minute boundary"),
        (cols.start_s > now.timestamp() + STEP_S, "interval start {t} is in the future"),
        (~np.isfinite(cols.value), "value {v} is not a finite number"),
    ]
    if refuse_negative:
        checks.append((cols.value < 0, "value {v:g} kWh is negative"))
    if max_kwh is not None:
        checks.append(
            (
                cols.value > max_kwh,
                "{v:g} kWh is more than a meter of this site measures in 15 minutes "
                f"({max_kwh:g} kWh)",
            )
        )
    out = []
    for kind, (bad, text) in enumerate(checks):
        for i in np.flatnonzero(bad)[:limit].tolist():
            v = float(cols.value[i])
            t = _iso(cols.start_s[i])
            out.append((i, kind, text.format(m=cols.meter[i], c=cols.channel[i], t=t, v=v)))
    return sorted(out)


def repeated(cols: Columns) -> np.ndarray:
    """Which readings share their (meter, channel, interval start) with another of ``cols``
    (a start off the 15-minute grid repeats nothing)."""
    out = np.zeros(len(cols), dtype=bool)
    on = cols.start_s % STEP_S == 0
    if on.all():
        inverse = cols.rows.inverse
        out[:] = np.bincount(inverse)[inverse] > 1
    elif on.any():
        code, names = cols.meter_codes
        batch = batch_rows(code[on], names, cols.channel[on] == "export", cols.start_s[on])
        out[on] = np.bincount(batch.inverse)[batch.inverse] > 1
    return out


def problems(
    cols: Columns, *, meters: Set[str], now: datetime, max_kwh: float | None = None
) -> list[str]:
    """What is wrong with a message's readings, reading by reading (none when all is well);
    ``max_kwh``: the most energy a meter can measure in one interval."""
    found = findings(cols, meters=meters, now=now, max_kwh=max_kwh, limit=5)
    out = [f"reading {i + 1}: {text}" for i, _, text in sorted(found, key=lambda f: f[1])]
    if len(cols) and repeated(cols).any():
        out.append("readings repeat one (meter, channel, interval start)")
    return out


def concat(parts: list[Columns]) -> Columns:
    return Columns(
        **{
            name: np.concatenate([getattr(p, name) for p in parts])
            for name in ("meter", "channel", "start_s", "value", "source")
        }
    )


ROWS_AT_ONCE = 100_000
"""Day rows merged at once (about 80 MB of values): a bigger batch (a year of a big site's
file) is merged a part of its meters at a time, all in its one transaction."""


def store_columns(store: Store, cols: Columns, now: datetime) -> IngestReport:
    """Store checked readings in one transaction (see the module); what they did."""
    report = IngestReport()
    if not len(cols):
        return report
    clash, kept = [], []
    with store.engine.begin() as conn:
        stage.lock(conn, store.dialect)
        for index in _parts(cols):
            part = cols if index is None else _take(cols, index)
            done = _store_part(conn, store.dialect, part, now)
            report.new += done.new
            report.duplicates += done.duplicates
            clash.append(done.conflicts if index is None else index[done.conflicts])
            kept.append(done.kept)
        conflicting, stored = np.concatenate(clash), np.concatenate(kept)
        if len(conflicting):
            order = np.argsort(conflicting, kind="stable")
            report.conflicts = _keep_aside(conn, cols, conflicting[order], stored[order], now)
    return report


def _parts(cols: Columns) -> Iterator[np.ndarray | None]:
    """The readings of each part of ``cols``' meters with about ``ROWS_AT_ONCE`` day rows
    (``None``: all of them at once)."""
    batch = cols.rows
    if len(batch.rows) <= ROWS_AT_ONCE:
        yield None
        return
    code, names = cols.meter_codes
    per_meter = np.bincount(batch.rows // batch.days // 2, minlength=len(names))
    part_of_meter = (np.cumsum(per_meter) - 1) // ROWS_AT_ONCE
    part = part_of_meter[code]
    order = np.argsort(part, kind="stable")
    yield from np.split(order, np.flatnonzero(np.diff(part[order])) + 1)


def _take(cols: Columns, index: np.ndarray) -> Columns:
    return Columns(
        meter=cols.meter[index],
        channel=cols.channel[index],
        start_s=cols.start_s[index],
        value=cols.value[index],
        source=cols.source[index],
    )


def _store_part(conn: sa.Connection, dialect: str, cols: Columns, now: datetime) -> Merged:
    """Merge ``cols`` into their day rows and write those that change; the merge."""
    batch = cols.rows
    had = stage.read(conn, dialect, batch.names.tolist(), batch.d0, batch.d0 + batch.days - 1)
    old = place(batch, had.meter, had.channel == "export", had.day, had.block)
    done = merge(old, batch, cols.value)
    if len(done.changed):
        stage.write(
            conn,
            dialect,
            stage.Rows(
                meter=batch.meter[done.changed],
                channel=np.where(batch.export[done.changed], "export", "import").astype(object),
                day=batch.day[done.changed],
                block=done.block,
            ),
            stored=old.revision[done.changed] > 0,
            source=cols.source[done.by],
            now=now,
        )
    return done


def _keep_aside(
    conn: sa.Connection, cols: Columns, index: np.ndarray, kept: np.ndarray, now: datetime
) -> list[tuple[str, str, datetime, float, float]]:
    """Store the conflicting readings ``cols[index]`` (stored kWh ``kept``) in the conflicts."""
    out, rows = [], []
    for i, had in zip(index.tolist(), kept.tolist(), strict=True):
        m, c, v = str(cols.meter[i]), str(cols.channel[i]), float(cols.value[i])
        at = datetime.fromtimestamp(int(cols.start_s[i]), UTC)
        out.append((m, c, at, float(had), v))
        rows.append(
            {
                "meter": m,
                "channel": c,
                "interval_start": at,
                "stored_kwh": float(had),
                "offered_kwh": v,
                "source": str(cols.source[i]),
                "received_at": now,
            }
        )
    conn.execute(conflicts.insert(), rows)
    return out
