"""The bulk write of the readings path, by the database driver itself: ``executemany`` on
SQLite; on PostgreSQL ``COPY`` when none of the batch is stored yet (the usual case, checked in
one query), else one ``INSERT ... SELECT FROM unnest(arrays)``; either way a reading already
stored is left as it is."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import numpy as np
import sqlalchemy as sa

if TYPE_CHECKING:
    from openmeg.operation.mdms.bulk import Columns


def take(cols: Columns, index: np.ndarray) -> Columns:
    return type(cols)(
        meter=cols.meter[index],
        channel=cols.channel[index],
        start_s=cols.start_s[index],
        value=cols.value[index],
        source=cols.source[index],
    )


COLUMNS = "meter, channel, interval_start, value_kwh, source, received_at"
SQLITE_TIME = "%Y-%m-%d %H:%M:%S.%f"
"""How SQLAlchemy writes a time into SQLite (UTC, without offset): the stage writes the same."""

_THERE = (
    "SELECT count(*) FROM meter_readings WHERE meter = ANY(%s::varchar[])"
    " AND interval_start BETWEEN %s AND %s"
)
"""Readings stored for the batch's meters in its span of time (a superset of the batch's)."""
_TYPES = ["varchar", "varchar", "timestamptz", "float8", "varchar", "timestamptz"]
_INSERT = (
    f"INSERT INTO meter_readings ({COLUMNS}) SELECT m, c, t, v, s, %s FROM"
    " unnest(%s::varchar[], %s::varchar[], %s::timestamptz[], %s::float8[], %s::varchar[])"
    " AS u(m, c, t, v, s) ON CONFLICT DO NOTHING"
)


def insert_ignoring(conn: sa.Connection, dialect: str, cols: Columns, now: datetime) -> int:
    """Insert ``cols`` (received ``now``) into ``meter_readings``, leaving a reading already
    there as it is; how many were inserted."""
    order = np.lexsort((cols.start_s, cols.channel.astype(str), cols.meter.astype(str)))
    cols = take(cols, order)  # in key order: the index's pages are visited once each
    uniq, where = np.unique(cols.start_s, return_inverse=True)
    starts = [datetime.fromtimestamp(int(u), UTC) for u in uniq]
    now = now.astimezone(UTC)
    raw: Any = conn.connection.driver_connection
    if dialect == "sqlite":
        text = np.array([t.strftime(SQLITE_TIME) for t in starts], dtype=object)[where]
        rows = zip(
            cols.meter.tolist(),
            cols.channel.tolist(),
            text.tolist(),
            cols.value.tolist(),
            cols.source.tolist(),
            [now.strftime(SQLITE_TIME)] * len(cols),
            strict=True,
        )
        cur = raw.executemany(
            f"INSERT INTO meter_readings ({COLUMNS}) VALUES (?,?,?,?,?,?) ON CONFLICT DO NOTHING",
            rows,
        )
        return int(cur.rowcount)
    at = np.array(starts, dtype=object)[where]
    columns = (cols.meter.tolist(), cols.channel.tolist(), at.tolist())
    with raw.cursor() as cur:
        lo, hi = (
            datetime.fromtimestamp(int(uniq[0]), UTC),
            datetime.fromtimestamp(int(uniq[-1]), UTC),
        )
        cur.execute(_THERE, (sorted(set(columns[0])), lo, hi))
        if cur.fetchone()[0] == 0:  # none is stored yet (the usual case): COPY them in
            with cur.copy(f"COPY meter_readings ({COLUMNS}) FROM STDIN (FORMAT BINARY)") as cp:
                cp.set_types(_TYPES)
                for row in zip(*columns, cols.value.tolist(), cols.source.tolist(), strict=True):
                    cp.write_row((*row, now))
            return len(cols)
        cur.execute(_INSERT, (now, *columns, cols.value.tolist(), cols.source.tolist()))
        return int(cur.rowcount)
