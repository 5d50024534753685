"""Efficiency diagnosis of a premises' BAS equipment (Y.2071 clause 9.3).

Pure functions over the BAS points' interval series (a frame with an aware, regular index and a
column ``<equipment>.<point>`` per point; each row the mean over the interval starting at its
time) and the equipment descriptions. Each finding gives the equipment, the kind of waste, the
numbers that show it, the energy it cost [kWh] and the money at a price series [per kWh].
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import numpy as np
import pandas as pd

from openmeg.core.building_automation import POINTS, BasEquipment, BasSystem
from openmeg.core.errors import OpenMegError
from openmeg.customer import efficiency_rules as rules

FindingKind = Literal[
    "cop_drift", "fan_after_hours", "lights_empty_zone", "simultaneous_heating_cooling"
]


@dataclass(frozen=True, kw_only=True)
class DiagnosisLimits:
    """What counts as a finding."""

    min_kwh: float = 1.0
    """Smallest waste reported [kWh]."""
    cop_tolerance: float = 0.08
    """A day counts against a heat pump when its COP is this fraction below expected [-]."""
    band_k: float = 1.0
    """Supply air this far from the space temperature counts against the heat pumps [K]."""


@dataclass(frozen=True, kw_only=True)
class Finding:
    """One waste found: what, where, its evidence, and what it cost."""

    equipment: str
    kind: FindingKind
    summary: str
    evidence: dict[str, float] = field(default_factory=dict)
    start: datetime
    end: datetime
    kwh: float
    cost: float


def check_points(bas: BasSystem, points: pd.DataFrame) -> float:
    """The interval [h] of ``points``; ``OpenMegError`` saying what to fix if the frame is not
    a regular, aware series of finite values of every point of ``bas``."""
    idx = points.index
    if not isinstance(idx, pd.DatetimeIndex) or idx.tz is None or len(idx) < 2:
        raise OpenMegError("give the BAS points as a frame on an aware DatetimeIndex of >= 2 rows")
    steps = np.diff(idx.asi8)
    if steps[0] <= 0 or not np.all(steps == steps[0]):
        raise OpenMegError("give the BAS points at a regular, increasing interval")
    want = [f"{e.id}.{p.name}" for e in bas.equipment for p in POINTS[e.kind]]
    missing = [c for c in want if c not in points.columns]
    if missing:
        raise OpenMegError(f"the BAS points lack {', '.join(missing[:5])}: give every point")
    values = points[want].to_numpy(dtype=float)
    bad = [c for c, ok in zip(want, np.isfinite(values).all(axis=0), strict=True) if not ok]
    if bad:
        raise OpenMegError(f"non-finite values in {', '.join(bad[:5])}: fill or drop those rows")
    return float(steps[0]) / 3.6e12


def _prices(points: pd.DataFrame, price_per_kwh: float | pd.Series) -> np.ndarray:
    if isinstance(price_per_kwh, pd.Series):
        prices: np.ndarray = price_per_kwh.reindex(points.index).to_numpy(dtype=float)
    else:
        prices = np.full(len(points), float(price_per_kwh))
    if not np.all(np.isfinite(prices)):
        raise OpenMegError("give a finite price for every interval of the BAS points")
    return prices


def diagnose(
    bas: BasSystem,
    points: pd.DataFrame,
    *,
    timezone: str,
    price_per_kwh: float | pd.Series,
    limits: DiagnosisLimits = DiagnosisLimits(),
) -> list[Finding]:
    """Every waste of ``bas``'s equipment found in ``points``, largest energy first."""
    dt_h = check_points(bas, points)
    try:
        local = points.index.tz_convert(ZoneInfo(timezone))
    except (ZoneInfoNotFoundError, ValueError) as err:
        raise OpenMegError(f"unknown time zone {timezone!r}: give an IANA name") from err
    prices = _prices(points, price_per_kwh)
    hour = np.asarray(local.hour + local.minute / 60 + local.second / 3600, dtype=float)
    day = np.asarray(local.normalize().asi8 // 86_400_000_000_000, dtype=np.int64)
    pumps = [e for e in bas.equipment if e.kind == "heat_pump"]
    checks: list[tuple[BasEquipment, FindingKind, rules.Waste]] = []
    for e in bas.equipment:
        if e.kind == "ahu":
            checks.append((e, "fan_after_hours", rules.fan_after_hours(points, e, hour, dt_h)))
            if pumps and e.area_m2 > 0:
                waste = rules.simultaneous(points, e, pumps, limits.band_k)
                checks.append((e, "simultaneous_heating_cooling", waste))
        elif e.kind == "heat_pump":
            checks.append((e, "cop_drift", rules.cop_drift(points, e, day, limits.cop_tolerance)))
        elif e.kind == "lighting_zone":
            checks.append((e, "lights_empty_zone", rules.lights_empty_zone(points, e, dt_h)))
    found = []
    for e, kind, waste in checks:
        kwh = float(waste.kw.sum() * dt_h)
        if kwh < limits.min_kwh:
            continue
        where = np.flatnonzero(waste.kw != 0)
        found.append(
            Finding(
                equipment=e.id,
                kind=kind,
                summary=f"{e.name or e.id}: {waste.summary}, {kwh:.1f} kWh",
                evidence=waste.evidence,
                start=points.index[where[0]].to_pydatetime(),
                end=(points.index[where[-1]] + pd.Timedelta(hours=dt_h)).to_pydatetime(),
                kwh=kwh,
                cost=float((waste.kw * dt_h * prices).sum()),
            )
        )
    return sorted(found, key=lambda f: -f.kwh)
