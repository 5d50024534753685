"""Energy over a period from what the platform measured, and the balance of a boundary.

A boundary is the MEG at its point of common coupling, or one customer's premises at their
meters. Inside it: generators (PV, wind, CHP, fuel cell), storage (charged and discharged), and
loads; across it: energy imported and exported. The period's energy of each comes from the
historian's stored points: a cumulative counter (``energy_kwh``, ``energy_in_kwh``, a meter's
``import_kwh``/``export_kwh`` registers) where the device has one, else its power (``p_kw``,
``import_kw``) integrated. Then

- consumption = import + generation + discharge - charge - export (the boundary's balance; at the
  PCC it holds the network's losses and what no meter sees);
- self-sufficiency = 1 - import / consumption (the share of consumption not imported);
- self-consumption = 1 - export / generation (the share of local generation used locally).

Pure functions over arrays: times in seconds since the epoch (UTC), energy in kWh, power in kW.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Literal
from zoneinfo import ZoneInfo

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]
Period = Literal["today", "day", "month"]
PERIODS: tuple[Period, ...] = ("today", "day", "month")


def period_bounds(
    period: Period, now: datetime, timezone: str, on: date | None = None
) -> tuple[datetime, datetime]:
    """``[start, end)`` of the site's local day (``today``, ``day``) or month (``month``) up to
    ``now``.

    ``now`` has a time zone; the day is ``on`` (a local date; not with ``today``), or today's;
    the start is its local midnight (of the 1st, for a month) in ``timezone`` (an IANA name),
    the end the next day's (or month's), or ``now`` if that comes first; both in ``now``'s zone.
    A period that has not begun by ``now`` raises ``ValueError``.
    """
    if now.tzinfo is None:
        raise ValueError("now needs a time zone")
    if period not in PERIODS:
        raise ValueError(f"period is one of {', '.join(PERIODS)}, not {period!r}")
    if period == "today" and on is not None:
        raise ValueError("today is today: for another day ask for the day and its date")
    tz = ZoneInfo(timezone)
    first = on or now.astimezone(tz).date()
    if period == "month":
        first = first.replace(day=1)
        after = (first + timedelta(days=31)).replace(day=1)
    else:
        after = first + timedelta(days=1)
    # each midnight with its own offset: a day that changes to or from summer time
    start, end = (
        datetime.combine(d, time(0), tzinfo=tz).astimezone(now.tzinfo) for d in (first, after)
    )
    if start >= now:
        raise ValueError(f"{first.isoformat()} has not begun: the MEG's time is {now.isoformat()}")
    return start, min(end, now)


def _clean(ts: FloatArray, values: FloatArray) -> tuple[FloatArray, FloatArray]:
    t = np.asarray(ts, dtype=np.float64)
    v = np.asarray(values, dtype=np.float64)
    if t.shape != v.shape or t.ndim != 1:
        raise ValueError("times and values must be 1-d arrays of the same length")
    keep = np.isfinite(t) & np.isfinite(v)
    t, v = t[keep], v[keep]
    if np.any(np.diff(t) < 0):
        order = np.argsort(t, kind="stable")
        t, v = t[order], v[order]
    return t, v


def counter_kwh(ts: FloatArray, kwh: FloatArray, start: float, end: float) -> float:
    """Energy a cumulative counter counted in ``[start, end)`` [kWh].

    ``ts`` [s], ``kwh`` its readings [kWh]. Between two readings the counter is taken to rise
    linearly (so a reading before ``start`` and one after it share the energy at ``start``);
    before the first reading and after the last it counted nothing known. A reading below the one
    before is the counter restarted from zero, just before it: that reading is all it counted
    since. Missing readings (NaN) are left out.
    """
    t, v = _clean(ts, kwh)
    if len(t) == 0 or end <= start:
        return 0.0
    steps = np.diff(v)
    counted = np.concatenate(([0.0], np.cumsum(np.where(steps >= 0, steps, v[1:]))))
    # a restart comes just before the reading that shows it: flat until then
    restarts = np.flatnonzero(steps < 0) + 1
    t = np.insert(t, restarts, t[restarts] - 1e-6)
    counted = np.insert(counted, restarts, counted[restarts - 1])
    at = np.interp([start, end], t, counted)  # flat outside the readings
    return float(max(at[1] - at[0], 0.0))


def power_kwh(ts: FloatArray, kw: FloatArray, start: float, end: float) -> tuple[float, float]:
    """Energy of a power signal in ``[start, end)``: ``(positive, negative)`` parts [kWh], both
    as positive numbers.

    ``ts`` [s], ``kw`` its samples [kW], stored when they change: each holds until the next
    (the last until ``end``, so give ``end`` no later than now); before the first nothing is
    known. A missing sample (NaN) holds nothing until the next.
    """
    t = np.asarray(ts, dtype=np.float64)
    p = np.asarray(kw, dtype=np.float64)
    if t.shape != p.shape or t.ndim != 1:
        raise ValueError("times and values must be 1-d arrays of the same length")
    if len(t) == 0 or end <= start:
        return 0.0, 0.0
    order = np.argsort(t, kind="stable")
    t, p = t[order], p[order]
    until = np.append(t[1:], np.inf)
    hours = (np.clip(until, start, end) - np.clip(t, start, end)) / 3600.0
    p = np.where(np.isfinite(p), p, 0.0)
    return float(np.sum(hours * np.maximum(p, 0.0))), float(np.sum(hours * np.maximum(-p, 0.0)))


def premises_kwh(
    *, imported: float, exported: float, generated: float, discharged: float, charged: float
) -> float:
    """What the loads of premises used [kWh]: what their meter imported less what it exported,
    plus what was generated and discharged behind it, less what was charged there."""
    return imported - exported + generated + discharged - charged


def _share(part: float, whole: float) -> float | None:
    if whole <= 1e-9:
        return None
    return float(min(max(1.0 - part / whole, 0.0), 1.0))


@dataclass(frozen=True, kw_only=True)
class Balance:
    """The energy of a boundary over a period [kWh]; shares as fractions (0 .. 1), ``None``
    where there was nothing to share (no consumption, no generation)."""

    generation: Mapping[str, float]
    """Local generation by source: pv, wind, chp, fuel_cell."""
    discharged: float
    charged: float
    imported: float
    exported: float
    loads: Mapping[str, float] = field(default_factory=dict)
    """What the metered loads used, by kind (homes, commerce, industry, community)."""

    @property
    def generation_kwh(self) -> float:
        return float(sum(self.generation.values()))

    @property
    def consumption_kwh(self) -> float:
        """import + generation + discharge - charge - export (never below 0)."""
        total = self.imported + self.generation_kwh + self.discharged - self.charged - self.exported
        return max(total, 0.0)

    @property
    def unmetered_kwh(self) -> float:
        """Consumption no load's meter accounts for: the network's losses and unmetered loads
        (0 when no load is metered)."""
        if not self.loads:
            return 0.0
        return self.consumption_kwh - float(sum(self.loads.values()))

    @property
    def self_sufficiency(self) -> float | None:
        """1 - import / consumption."""
        return _share(self.imported, self.consumption_kwh)

    @property
    def self_consumption(self) -> float | None:
        """1 - export / generation."""
        return _share(self.exported, self.generation_kwh)

    def sources(self) -> dict[str, float]:
        """Where the boundary's energy came from [kWh]."""
        return {
            **self.generation,
            "battery_discharge": self.discharged,
            "grid_import": self.imported,
        }

    def sinks(self) -> dict[str, float]:
        """Where it went [kWh]: storage, export, the loads by kind, and what no meter saw
        (``loads`` alone when the loads are not metered one by one)."""
        out = {"battery_charge": self.charged, "grid_export": self.exported}
        if self.loads:
            out |= dict(self.loads)
            out["unmetered"] = self.unmetered_kwh
        else:
            out["loads"] = self.consumption_kwh
        return out
