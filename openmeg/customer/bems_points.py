"""The BAS points at the edge of the premises' energy management: each value checked (finite, in
its point's range, a whole state for binary and multi-state points) and kept as interval series
for the efficiency diagnosis and the reports."""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

import numpy as np
import pandas as pd

from openmeg.core.building_automation import BasEquipment, BasPoint, BasSystem

READ_RANGE: dict[str, tuple[float, float]] = {
    "degC": (-60.0, 150.0),
    "Pa": (0.0, 10_000.0),
    "%": (0.0, 100.0),
    "h": (0.0, 24.0),
    "": (0.0, 20.0),  # a COP
}
"""The plausible range of a read-only analogue point by its unit (kW: by the rating)."""
KW_PER_RATED = 12.0
"""A power point may read up to this many times its equipment's rating (heat at a COP) [-]."""


def value_problem(e: BasEquipment, p: BasPoint, value: float) -> str:
    """Why ``value`` of ``e``'s point ``p`` is not believed (``""`` if it is)."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return f"not a finite number: {value!r}"
    v = float(value)
    if p.binary or p.states:
        high = 1.0 if p.binary else float(len(p.states))
        low = 0.0 if p.binary else 1.0
        if v != int(v) or not low <= v <= high:
            return f"not a state {low:g}..{high:g}: {v:g}"
        return ""
    if p.writable:
        low, high = p.low, p.high
    elif p.unit == "kW":
        high = KW_PER_RATED * max(e.rated_kw, 1.0)
        low = -high
    else:
        low, high = READ_RANGE.get(p.unit, (-1e6, 1e6))
    if not low <= v <= high:
        return f"outside {low:g}..{high:g} {p.unit}: {v:g}".replace("  ", " ")
    return ""


@dataclass(frozen=True, kw_only=True)
class Checked:
    """One poll's values at the edge: the believed ones and why each other one is not."""

    ts: datetime
    good: dict[str, float]
    bad: dict[str, str]


def check_poll(bas: BasSystem, ts: datetime, values: Mapping[str, float]) -> Checked:
    """``values`` (by ``<equipment>.<point>``) checked point by point; a missing point is bad."""
    good: dict[str, float] = {}
    bad: dict[str, str] = {}
    for e, p, _ in bas.objects():
        name = f"{e.id}.{p.name}"
        if name not in values:
            bad[name] = "no value"
            continue
        why = value_problem(e, p, values[name])
        if why:
            bad[name] = why
        else:
            good[name] = float(values[name])
    return Checked(ts=ts, good=good, bad=bad)


class PointSeries:
    """The last ``keep`` polls of a BAS's points, as interval series."""

    def __init__(self, bas: BasSystem, *, keep: int) -> None:
        if keep < 2:
            raise ValueError(f"keep at least 2 polls, not {keep}")
        self.names = [f"{e.id}.{p.name}" for e, p, _ in bas.objects()]
        self._rows: deque[tuple[datetime, list[float]]] = deque(maxlen=keep)

    def __len__(self) -> int:
        return len(self._rows)

    def add(self, checked: Checked) -> None:
        """Keep a poll (a bad point is kept as missing)."""
        row = [checked.good.get(n, math.nan) for n in self.names]
        self._rows.append((checked.ts, row))

    def frame(self, interval_s: float) -> pd.DataFrame:
        """The series on a regular index of ``interval_s`` (aware UTC; each row the mean of the
        polls in its interval, a missing one holding the value before it); rows before every
        point has a value are left out."""
        if not self._rows:
            return pd.DataFrame(columns=self.names, index=pd.DatetimeIndex([], tz="UTC"))
        index = pd.DatetimeIndex([pd.Timestamp(t).tz_convert("UTC") for t, _ in self._rows])
        raw = pd.DataFrame(np.array([r for _, r in self._rows]), index=index, columns=self.names)
        regular = raw.resample(pd.Timedelta(seconds=interval_s)).mean().ffill()
        return regular[regular.notna().all(axis=1)]
