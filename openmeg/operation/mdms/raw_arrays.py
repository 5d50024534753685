"""The raw readings as arrays for VEE: the one place that reads them for the array path.

Through the interval store's ``MeterReadings.arrays`` (a row per meter, channel and UTC day,
with a revision that grows whenever the day's readings change)."""

from __future__ import annotations

from datetime import datetime

import numpy as np
import pandas as pd
import sqlalchemy as sa

from openmeg.core.store import as_utc
from openmeg.operation.mdms.store import INTERVAL, MeterReadings, register_reads
from openmeg.operation.mdms.vee_matrix import Registers

PER_DAY = 96
DAY = pd.Timedelta(days=1)
_CHUNK = 500


def utc_day_floor(ts: datetime) -> pd.Timestamp:
    return pd.Timestamp(as_utc(ts)).floor("D")


def utc_day_ceil(ts: datetime) -> pd.Timestamp:
    return pd.Timestamp(as_utc(ts)).ceil("D")


def raw_days(
    readings: MeterReadings, meters: list[str], channel: str, start: datetime, end: datetime
) -> tuple[np.ndarray, np.ndarray]:
    """Raw kWh of ``meters`` over the UTC days ``[start, end)`` (on UTC midnights): float64
    [n_meters, 96 x n_days], NaN where missing, and each (meter, UTC day)'s revision, int64
    [n_meters, n_days], which grows whenever the day's readings change."""
    t0, t1 = pd.Timestamp(as_utc(start)), pd.Timestamp(as_utc(end))
    if t0 != t0.floor("D") or t1 != t1.floor("D"):
        raise ValueError(f"{t0} to {t1}: raw days run from UTC midnight to UTC midnight")
    n_days = int((t1 - t0) / DAY)
    values, revisions = readings.arrays(
        list(meters), channel, t0.to_pydatetime(), t1.to_pydatetime()
    )
    return np.asarray(values, float), np.asarray(revisions, np.int64)[:, :n_days]


def window(
    readings: MeterReadings, meters: list[str], channel: str, start: pd.Timestamp, n: int
) -> np.ndarray:
    """Raw kWh of ``meters`` for ``n`` intervals from ``start``: float64 [n_meters, n]."""
    end = (start + n * pd.Timedelta(INTERVAL)).to_pydatetime()
    return np.asarray(readings.arrays(list(meters), channel, start.to_pydatetime(), end)[0], float)


def registers(
    readings: MeterReadings, meters: list[str], channel: str, start: datetime, end: datetime
) -> Registers:
    """The register reads of ``meters`` with ``start <= read_at <= end``, rows as in ``meters``."""
    t = register_reads.c
    rows: list[tuple[str, datetime, float]] = []
    with readings.store.engine.connect() as conn:
        for lo in range(0, len(meters), _CHUNK):
            q = sa.select(t.meter, t.read_at, t.value_kwh).where(
                t.meter.in_(meters[lo : lo + _CHUNK]),
                t.channel == channel,
                t.read_at >= as_utc(start),
                t.read_at <= as_utc(end),
            )
            rows += [(r[0], r[1], r[2]) for r in conn.execute(q)]
    if not rows:
        return Registers.empty()
    at = pd.to_datetime([r[1] for r in rows], utc=True)
    where = {m: i for i, m in enumerate(meters)}
    row = np.array([where[r[0]] for r in rows], np.int64)
    return Registers.of(row, at.as_unit("ns").asi8, np.array([r[2] for r in rows], float))
