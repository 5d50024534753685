"""Readings of a store made before the day rows (``meter_readings``, a row per reading) moved
into the day rows once, the first time the store is opened for its readings, then that table
dropped. Moved a meter at a time through the one writer, so a move cut short is taken up again
where it stopped (what was moved already counts as duplicates) at the next opening."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import sqlalchemy as sa

from openmeg.core.store import Store, as_utc
from openmeg.operation.mdms.bulk import Columns, store_columns

LEGACY = "meter_readings"


def move_legacy_readings(store: Store) -> int:
    """Move the readings of a ``meter_readings`` table into the day rows and drop it; how many
    readings were moved (0 where there is no such table)."""
    if not sa.inspect(store.engine).has_table(LEGACY):
        return 0
    old = sa.Table(LEGACY, sa.MetaData(), autoload_with=store.engine)
    moved = 0
    with store.engine.connect() as conn:
        meters = [m for (m,) in conn.execute(sa.select(old.c.meter).distinct())]
    for meter in sorted(meters):
        with store.engine.connect() as conn:
            rows = conn.execute(
                sa.select(old.c.channel, old.c.interval_start, old.c.value_kwh, old.c.source).where(
                    old.c.meter == meter
                )
            ).all()
            latest = conn.execute(
                sa.select(sa.func.max(old.c.received_at)).where(old.c.meter == meter)
            ).scalar_one()
        if not rows:
            continue
        channel, start, value, source = zip(*rows, strict=True)
        cols = Columns(
            meter=np.full(len(rows), meter, dtype=object),
            channel=np.array(channel, dtype=object),
            start_s=np.array([int(as_utc(t).timestamp()) for t in start], dtype=np.int64),
            value=np.array(value, dtype=float),
            source=np.array(source, dtype=object),
        )
        at = as_utc(latest) if latest is not None else datetime.now(UTC)
        moved += store_columns(store, cols, at).new
    with store.engine.begin() as conn:
        old.drop(conn, checkfirst=True)  # another process may have moved them at once
    return moved
