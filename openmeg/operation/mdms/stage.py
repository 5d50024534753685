"""The bulk reads and writes of the day rows (``day_rows``), by the database driver itself:
on SQLite one ``executemany`` upsert; on PostgreSQL ``COPY`` for the rows not stored yet and
one ``UPDATE ... FROM unnest(arrays)`` for those merged with what was stored. A writer takes the
table's write lock first (``lock``), so that what it read is still what is there when it writes."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import numpy as np
import sqlalchemy as sa

from openmeg.operation.mdms.day_rows import (
    CHANNELS,
    DayBlock,
    decode_present,
    decode_values,
    encode_present,
    encode_values,
)

SQLITE_TIME = "%Y-%m-%d %H:%M:%S.%f"
"""How SQLAlchemy writes a time into SQLite (UTC, without offset): the stage writes the same."""
COLUMNS = "meter, channel, day, value_kwh, present, n, received_at, source, revision"
_TYPES = ["varchar", "varchar", "int4", "bytea", "bytea", "int4", "timestamptz", "varchar", "int4"]
_UPSERT = (
    f"INSERT INTO meter_days ({COLUMNS}) VALUES (?,?,?,?,?,?,?,?,?)"
    " ON CONFLICT (meter, channel, day) DO UPDATE SET value_kwh = excluded.value_kwh,"
    " present = excluded.present, n = excluded.n, received_at = excluded.received_at,"
    " source = excluded.source, revision = excluded.revision"
)
_UPDATE = (
    "UPDATE meter_days AS d SET value_kwh = u.v, present = u.p, n = u.n, received_at = %b,"
    " source = u.s, revision = u.r FROM unnest(%b::varchar[], %b::varchar[], %b::int4[],"
    " %b::bytea[], %b::bytea[], %b::int4[], %b::varchar[], %b::int4[]) AS u(m, c, d, v, p, n, s, r)"
    " WHERE d.meter = u.m AND d.channel = u.c AND d.day = u.d"
)
_CHUNK = 5000
"""Meters named in one SQLite query (below its limit of bound parameters)."""


@dataclass(frozen=True, kw_only=True)
class Rows:
    """Day rows as arrays: their keys (meter, channel: str; day: UTC day) and their content."""

    meter: np.ndarray
    channel: np.ndarray
    day: np.ndarray
    block: DayBlock


def lock(conn: sa.Connection, dialect: str) -> None:
    """Take the write lock of ``meter_days`` for this transaction (readers go on)."""
    raw: Any = conn.connection.driver_connection
    if dialect == "postgresql":
        with raw.cursor() as cur:
            cur.execute("LOCK TABLE meter_days IN SHARE ROW EXCLUSIVE MODE")
    else:  # a write that changes nothing: SQLite's write lock, held to the commit
        raw.execute("UPDATE meter_days SET n = n WHERE 0")


def read(
    conn: sa.Connection,
    dialect: str,
    meters: list[str],
    lo_day: int,
    hi_day: int,
    channel: str | None = None,
) -> Rows:
    """The stored rows of ``meters`` with ``lo_day <= day <= hi_day`` (of ``channel``, or both):
    every part of the key named, so that the index is searched, not scanned."""
    raw: Any = conn.connection.driver_connection
    channels = list(CHANNELS) if channel is None else [channel]
    cols = "meter, channel, day, value_kwh, present, revision"
    found: list[tuple[Any, ...]] = []
    if dialect == "postgresql":
        sql = (
            f"SELECT {cols} FROM meter_days WHERE meter = ANY(%b) AND channel = ANY(%b)"
            " AND day BETWEEN %b AND %b"
        )
        args: list[Any] = [list(meters), channels, lo_day, hi_day]
        with raw.cursor() as cur:
            cur.execute(sql, args, binary=True)
            found = cur.fetchall()
    else:
        for part in _chunks(meters):
            marks, kinds = ",".join("?" * len(part)), ",".join("?" * len(channels))
            sql = (
                f"SELECT {cols} FROM meter_days WHERE meter IN ({marks})"
                f" AND channel IN ({kinds}) AND day BETWEEN ? AND ?"
            )
            args = [*part, *channels, lo_day, hi_day]
            found += raw.execute(sql, args).fetchall()
    if not found:
        return Rows(
            meter=np.empty(0, object),
            channel=np.empty(0, object),
            day=np.empty(0, np.int64),
            block=DayBlock.empty(0),
        )
    meter, chan, day, values, present, revision = zip(*found, strict=True)
    mask = decode_present([bytes(p) for p in present])
    return Rows(
        meter=np.array(meter, dtype=object),
        channel=np.array(chan, dtype=object),
        day=np.array(day, dtype=np.int64),
        block=DayBlock(
            values=np.where(mask, decode_values([bytes(v) for v in values]), np.nan),
            present=mask,
            revision=np.array(revision, dtype=np.int64),
        ),
    )


def _chunks(items: list[str]) -> Iterator[list[str]]:
    for i in range(0, len(items), _CHUNK):
        yield items[i : i + _CHUNK]


def write(
    conn: sa.Connection,
    dialect: str,
    rows: Rows,
    *,
    stored: np.ndarray,
    source: np.ndarray,
    now: datetime,
) -> None:
    """Write ``rows`` (received ``now`` from ``source``, one a row) whole: a new row where
    ``stored`` is false, else in place of the stored one (under ``lock``)."""
    b = rows.block
    blobs = encode_values(np.where(b.present, b.values, 0.0))
    masks = encode_present(b.present)
    n = b.present.sum(axis=1).tolist()
    keys = (rows.meter.tolist(), rows.channel.tolist(), rows.day.tolist())
    rev = b.revision.tolist()
    now = now.astimezone(UTC)
    raw: Any = conn.connection.driver_connection
    if dialect != "postgresql":
        at = [now.strftime(SQLITE_TIME)] * len(n)
        raw.executemany(_UPSERT, zip(*keys, blobs, masks, n, at, source.tolist(), rev, strict=True))
        return
    new, old = np.flatnonzero(~stored), np.flatnonzero(stored)
    with raw.cursor() as cur:
        if len(new):
            with cur.copy(f"COPY meter_days ({COLUMNS}) FROM STDIN (FORMAT BINARY)") as cp:
                cp.set_types(_TYPES)
                for i in new.tolist():
                    row = (keys[0][i], keys[1][i], keys[2][i], blobs[i], masks[i], n[i])
                    cp.write_row((*row, now, source[i], rev[i]))
        if len(old):
            pick = old.tolist()
            cur.execute(
                _UPDATE,
                (
                    now,
                    *([k[i] for i in pick] for k in keys),
                    [blobs[i] for i in pick],
                    [masks[i] for i in pick],
                    [n[i] for i in pick],
                    [source[i] for i in pick],
                    [rev[i] for i in pick],
                ),
                binary=True,
            )
