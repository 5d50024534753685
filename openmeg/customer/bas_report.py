"""The automatic BAS report of a premises (Y.2071 clause 9.3), daily or monthly: the energy of
each piece of equipment, the supply status, the fire and security alarms and the efficiency
findings with the kWh and money they cost; as HTML or PDF (``bas_report_render``), written to a
file ready to e-mail and returned as bytes for the API.

Energies in kWh, hours in h, money in the price series' currency.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import numpy as np
import pandas as pd

from openmeg.core.building_automation import BasSystem
from openmeg.core.errors import OpenMegError
from openmeg.customer.efficiency import DiagnosisLimits, Finding, check_points, diagnose

Period = Literal["day", "month"]
ELECTRIC = {"ahu": "fan_kw", "heat_pump": "electric_kw", "lighting_zone": "lights_kw"}
ALARMS = {"fire_alarm": ("alarm", "trouble"), "security": ("intrusion",)}


@dataclass(frozen=True, kw_only=True)
class EquipmentEnergy:
    """One piece of equipment's energy over the period."""

    equipment: str
    name: str
    kind: str
    electric_kwh: float
    heating_kwh: float
    cooling_kwh: float
    running_h: float


@dataclass(frozen=True, kw_only=True)
class SupplyLine:
    """One supply of the premises over the period: energy [kWh] and hours it was live [h]."""

    supply: str
    energy_kwh: float
    live_h: float


@dataclass(frozen=True, kw_only=True)
class Alarm:
    """One episode of a fire alarm, fire trouble or intrusion input raised."""

    equipment: str
    point: str
    start: datetime
    end: datetime


@dataclass(frozen=True, kw_only=True)
class BasReport:
    """A premises' BAS report over one local day or month."""

    bas: str
    premises: str
    period: Period
    start: datetime
    end: datetime
    currency: str
    energy: tuple[EquipmentEnergy, ...]
    supply: tuple[SupplyLine, ...]
    island_h: float
    alarms: tuple[Alarm, ...]
    findings: tuple[Finding, ...]

    @property
    def electric_kwh(self) -> float:
        """All the BAS equipment's electricity [kWh]."""
        return sum(e.electric_kwh for e in self.energy)

    @property
    def waste_kwh(self) -> float:
        """What the findings cost in energy [kWh]."""
        return sum(f.kwh for f in self.findings)

    @property
    def waste_cost(self) -> float:
        """What the findings cost in money."""
        return sum(f.cost for f in self.findings)


def period_bounds(day: date, period: Period, timezone: str) -> tuple[pd.Timestamp, pd.Timestamp]:
    """The local day of ``day``, or its month, as aware times ``[start, end)``."""
    try:
        tz = ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError) as err:
        raise OpenMegError(f"unknown time zone {timezone!r}: give an IANA name") from err
    if period not in ("day", "month"):
        raise OpenMegError(f"a BAS report covers a day or a month, not {period!r}")
    first = pd.Timestamp(day) if period == "day" else pd.Timestamp(day.year, day.month, 1)
    last = first + (pd.DateOffset(days=1) if period == "day" else pd.DateOffset(months=1))
    return first.tz_localize(tz), pd.Timestamp(last).tz_localize(tz)


def _episodes(
    on: np.ndarray, index: pd.DatetimeIndex, dt: pd.Timedelta
) -> list[tuple[pd.Timestamp, pd.Timestamp]]:
    edges = np.diff(np.concatenate(([0], on.astype(np.int8), [0])))
    starts, ends = np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)
    utc = index.tz_convert("UTC")
    return [(utc[a], utc[b - 1] + dt) for a, b in zip(starts, ends, strict=True)]


def build_report(
    bas: BasSystem,
    points: pd.DataFrame,
    *,
    day: date,
    period: Period,
    timezone: str,
    price_per_kwh: float | pd.Series,
    currency: str = "EUR",
    supply: pd.DataFrame | None = None,
    findings: Sequence[Finding] | None = None,
    limits: DiagnosisLimits | None = None,
) -> BasReport:
    """The report of ``bas`` for the local ``day`` (or its month) from its points' series.

    ``supply`` gives each supply's power [kW] by column (grid, PV, battery, ...; its rows the
    interval means) and optionally a boolean ``island`` column; ``findings`` default to the
    diagnosis of the period's points at ``price_per_kwh``.
    """
    start, end = period_bounds(day, period, timezone)
    dt_h = check_points(bas, points)
    part = points[(points.index >= start) & (points.index < end)]
    if len(part) < 2:
        raise OpenMegError(
            f"the BAS points hold no {period} from {start:%Y-%m-%d}: give its series"
        )
    dt = pd.Timedelta(hours=dt_h)
    if findings is None:
        findings = diagnose(
            bas,
            part,
            timezone=timezone,
            price_per_kwh=price_per_kwh,
            limits=limits or DiagnosisLimits(),
        )
    energy, alarms = [], []
    for e in bas.equipment:
        if e.kind in ELECTRIC:
            kw = part[f"{e.id}.{ELECTRIC[e.kind]}"].to_numpy(dtype=float)
            heat = cool = np.zeros(len(part))
            if e.kind == "heat_pump":
                mode = part[f"{e.id}.mode"].to_numpy()
                thermal = part[f"{e.id}.thermal_kw"].to_numpy(dtype=float)
                heat, cool = np.where(mode == 2, thermal, 0.0), np.where(mode == 3, thermal, 0.0)
            energy.append(
                EquipmentEnergy(
                    equipment=e.id,
                    name=e.name or e.id,
                    kind=e.kind,
                    electric_kwh=float(kw.sum() * dt_h),
                    heating_kwh=float(heat.sum() * dt_h),
                    cooling_kwh=float(cool.sum() * dt_h),
                    running_h=float((kw > 0).sum() * dt_h),
                )
            )
        for name in ALARMS.get(e.kind, ()):
            raised = part[f"{e.id}.{name}"].to_numpy() >= 0.5
            for a, b in _episodes(raised, part.index, dt):
                alarms.append(
                    Alarm(
                        equipment=e.id, point=name, start=a.to_pydatetime(), end=b.to_pydatetime()
                    )
                )
    lines, island_h = _supply(supply, start, end)
    return BasReport(
        bas=bas.id,
        premises=bas.premises,
        period=period,
        start=start.to_pydatetime(),
        end=end.to_pydatetime(),
        currency=currency,
        energy=tuple(energy),
        supply=lines,
        island_h=island_h,
        alarms=tuple(sorted(alarms, key=lambda a: a.start)),
        findings=tuple(findings),
    )


def _supply(
    supply: pd.DataFrame | None, start: pd.Timestamp, end: pd.Timestamp
) -> tuple[tuple[SupplyLine, ...], float]:
    if supply is None:
        return (), 0.0
    idx = supply.index
    steps = np.diff(idx.asi8) if isinstance(idx, pd.DatetimeIndex) and idx.tz else np.array([0])
    if len(steps) == 0 or steps[0] <= 0 or not np.all(steps == steps[0]):
        raise OpenMegError("give the supplies' powers at a regular interval on an aware index")
    dt_h = float(steps[0]) / 3.6e12
    part = supply[(idx >= start) & (idx < end)]
    island = part["island"].to_numpy(dtype=bool) if "island" in part else np.zeros(len(part), bool)
    lines = []
    for name in (c for c in part.columns if c != "island"):
        kw = part[name].to_numpy(dtype=float)
        if not np.all(np.isfinite(kw)):
            raise OpenMegError(f"non-finite powers in the supply {name!r}: fill or drop those rows")
        lines.append(
            SupplyLine(
                supply=str(name),
                energy_kwh=float(kw.sum() * dt_h),
                live_h=float((np.abs(kw) > 0).sum() * dt_h),
            )
        )
    return tuple(lines), float(island.sum() * dt_h)
