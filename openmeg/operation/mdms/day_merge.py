"""A batch of readings merged into the day rows it touches, on whole arrays (pure numpy).

A reading is a (meter, channel, interval start, kWh); its row is (meter, channel, UTC day) and
its slot the interval of that day (0..95). The first of a repeated (meter, channel, interval
start) in a batch is the one offered; a reading offered where the row holds none is new; where
it holds one, the same value (within 1e-9 kWh) is a duplicate and another value a conflict,
never written over; the others of a repeated key are compared with what the row keeps."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from openmeg.operation.mdms.day_rows import SLOTS, DayBlock, slot, utc_day

TOLERANCE_KWH = 1e-9
"""Two values closer than this are the same reading."""


@dataclass(frozen=True, kw_only=True)
class BatchRows:
    """Where each reading of a batch goes. ``first`` [keys]: the reading offered for each
    distinct key; ``inverse`` [readings]: the key of each reading; ``group``, ``at`` [keys]:
    each key's row (an index into ``rows``) and slot; ``rows`` [rows]: the sorted row keys
    ``(meter code * 2 + export) * days + day - d0``, of ``meter`` (a name), ``export`` and
    ``day`` (UTC days since 1970-01-01)."""

    first: np.ndarray
    inverse: np.ndarray
    group: np.ndarray
    at: np.ndarray
    rows: np.ndarray
    meter: np.ndarray
    export: np.ndarray
    day: np.ndarray
    names: np.ndarray
    d0: int
    days: int


def row_keys(
    code: np.ndarray, export: np.ndarray, day: np.ndarray, d0: int, days: int
) -> np.ndarray:
    """The key of each row: (meter code, channel, UTC day) as one integer."""
    key: np.ndarray = (code.astype(np.int64) * 2 + export.astype(np.int64)) * days + (day - d0)
    return key


def batch_rows(
    code: np.ndarray, names: np.ndarray, export: np.ndarray, start_s: np.ndarray
) -> BatchRows:
    """The rows and slots of readings of meter ``names[code]``, channel export or import, at
    interval starts ``start_s`` (epoch seconds on 15-minute boundaries)."""
    day = utc_day(start_s)
    d0 = int(day.min()) if len(day) else 0
    days = int(day.max()) - d0 + 1 if len(day) else 1
    key = row_keys(code, export, day, d0, days) * SLOTS + slot(start_s)
    uniq, first, inverse = np.unique(key, return_index=True, return_inverse=True)
    rows, group = np.unique(uniq // SLOTS, return_inverse=True)
    return BatchRows(
        first=first,
        inverse=inverse.ravel(),
        group=group.ravel(),
        at=uniq % SLOTS,
        rows=rows,
        meter=np.append(names, np.array([None], dtype=object))[rows // days // 2],  # -1: none
        export=(rows // days) % 2 == 1,
        day=rows % days + d0,
        names=names,
        d0=d0,
        days=days,
    )


def place(
    batch: BatchRows, meter: np.ndarray, export: np.ndarray, day: np.ndarray, block: DayBlock
) -> DayBlock:
    """The stored rows (keys ``meter``, ``export``, ``day``; content ``block``) in the order of
    ``batch.rows``, empty where a row is not stored; stored rows the batch does not touch left
    out."""
    out = DayBlock.empty(len(batch.rows))
    if not len(day):
        return out
    code = pd.Index(batch.names).get_indexer(meter)
    want = row_keys(code, export, day, batch.d0, batch.days)
    pos = np.clip(np.searchsorted(batch.rows, want), 0, len(batch.rows) - 1)
    hit = (code >= 0) & (batch.rows[pos] == want)
    out.values[pos[hit]] = block.values[hit]
    out.present[pos[hit]] = block.present[hit]
    out.revision[pos[hit]] = block.revision[hit]
    return out


@dataclass(frozen=True, kw_only=True)
class Merged:
    """What a batch does to its rows: ``new`` and ``duplicates`` (counts of readings);
    ``conflicts`` [k]: the readings (indices, in batch order) refused, and ``kept`` [k] the
    kWh the row keeps for each; ``changed`` [c]: the rows (indices into ``batch.rows``) that
    take new readings, ``block`` their merged content (revision one up), ``by`` [c] the reading
    that brought each row its first new value (whose source the row records)."""

    new: int
    duplicates: int
    conflicts: np.ndarray
    kept: np.ndarray
    changed: np.ndarray
    block: DayBlock
    by: np.ndarray


def merge(old: DayBlock, batch: BatchRows, value: np.ndarray) -> Merged:
    """Merge readings of kWh ``value`` (placed by ``batch``) into the stored rows ``old``
    (``place``'s order); ``old`` is left as it was."""
    group, at, first, inverse = batch.group, batch.at, batch.first, batch.inverse
    offered = value[first]
    stored = old.present[group, at]
    kept = np.where(stored, old.values[group, at], offered)
    same = stored & (np.abs(kept - offered) <= TOLERANCE_KWH)
    again = np.ones(len(value), dtype=bool)
    again[first] = False
    again_idx = np.flatnonzero(again)
    again_same = np.abs(value[again_idx] - kept[inverse[again_idx]]) <= TOLERANCE_KWH
    clash = np.concatenate([first[stored & ~same], again_idx[~again_same]])
    clash_kept = np.concatenate([kept[stored & ~same], kept[inverse[again_idx]][~again_same]])
    order = np.argsort(clash, kind="stable")
    fresh = ~stored
    changed, by = np.unique(group[fresh], return_index=True)
    values, present = old.values.copy(), old.present.copy()
    values[group[fresh], at[fresh]] = offered[fresh]
    present[group[fresh], at[fresh]] = True
    return Merged(
        new=int(fresh.sum()),
        duplicates=int(same.sum() + again_same.sum()),
        conflicts=clash[order],
        kept=clash_kept[order],
        changed=changed,
        block=DayBlock(
            values=values[changed], present=present[changed], revision=old.revision[changed] + 1
        ),
        by=first[fresh][by],
    )
