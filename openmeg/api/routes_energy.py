"""Energy views: today's and this month's energy per source and sink, self-sufficiency and
self-consumption (the MEG at its PCC, or a prosumer's own premises at their meters), from the
points the historian stored; and what one point is (its unit), for the history charts."""

from __future__ import annotations

import itertools
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any, Literal

import numpy as np
import sqlalchemy as sa
from fastapi import APIRouter, Depends, HTTPException, Query
from pydantic import BaseModel, ConfigDict

from openmeg.api.auth import ERRORS, scope, services
from openmeg.api.context import ApiServices, Scope
from openmeg.api.routes_operation import EARLIEST, LATEST
from openmeg.core.points import unit_of
from openmeg.core.store import as_utc, point_history
from openmeg.operation.energy_balance import (
    Balance,
    Period,
    counter_kwh,
    period_bounds,
    power_kwh,
    premises_kwh,
)

router = APIRouter(prefix="/api/v1", responses=ERRORS)

GENERATORS = {"pv": "pv", "wind": "wind", "chp": "chp", "fuel_cell": "fuel_cell"}
"""Device kinds that generate, and the source they count under."""
LOADS_OF = {
    "residential": "homes",
    "commercial": "commerce",
    "industrial": "industry",
    "community": "community",
}
"""A customer's kind, and the sink their premises' loads count under."""
# what each kind of thing counted: (counter out, counter in, power whose + is out, - is in)
POINTS = {
    "generator": ("energy_kwh", None, "p_kw"),
    "battery": ("energy_kwh", "energy_in_kwh", "p_kw"),
    "meter": ("import_kwh", "export_kwh", "import_kw"),
    "pcc": ("import_kwh", "export_kwh", "import_kw"),
}


class _Out(BaseModel):
    model_config = ConfigDict(extra="forbid")


class DeviceEnergy(_Out):
    device: str
    name: str | None
    kind: str
    out_kwh: float
    """Generated, discharged, or imported (a meter, the PCC) [kWh]."""
    in_kwh: float
    """Charged, or exported (a meter, the PCC) [kWh]."""
    measured_by: Literal["counter", "power"]
    """From the device's energy counters, or its power integrated."""


class EnergyOut(_Out):
    period: Period
    start: datetime
    end: datetime
    timezone: str
    boundary: Literal["site", "premises"]
    """The MEG at its PCC, or the caller's own premises at their meters."""
    sources: dict[str, float]
    """kWh by source: pv, wind, chp, fuel_cell, battery_discharge, grid_import."""
    sinks: dict[str, float]
    """kWh by sink: battery_charge, grid_export, and the loads: by kind (homes, commerce,
    industry, community) with ``unmetered`` (network losses, loads no meter sees), or ``loads``."""
    heat: dict[str, float]
    """kWh of heat: ``chp_heat`` into the heat stores, ``heat_demand`` of the heat loads."""
    generation_kwh: float
    consumption_kwh: float
    self_sufficiency: float | None
    """1 - import / consumption; none without consumption."""
    self_consumption: float | None
    """1 - export / generation; none without generation."""
    devices: list[DeviceEnergy]


class PointOut(_Out):
    device: str
    name: str
    unit: str
    value: float | None
    ts: datetime | None
    quality: str | None


Series = tuple[np.ndarray, np.ndarray]


@dataclass
class _Readings:
    """The stored values of the points asked for in a period (with the last one before it and
    the live one after), as arrays of seconds and values."""

    series: dict[tuple[str, str], Series]

    def get(self, device: str, name: str | None) -> Series | None:
        if name is None:
            return None
        s = self.series.get((device, name))
        return s if s is not None and len(s[0]) else None


def _read(
    svc: ApiServices,
    wanted: Iterable[tuple[str, str]],
    t0: datetime,
    t1: datetime,
    *,
    counters: bool = False,
) -> _Readings:
    """The stored values of the points ``wanted`` in ``[t0, t1)``, with the last before and
    the first after (and the live value, when newer than the stored ones). Of a counter
    (``counters``), see ``_counter_readings``."""
    t = point_history.c
    site = svc.site.site.id
    by_point: dict[tuple[str, str], list[tuple[float, float]]] = {}
    after: dict[tuple[str, str], tuple[float, float]] = {}
    start, end = as_utc(t0), as_utc(t1)
    # the live values as they are now, before the MEG moves on while the store is read: all
    # of one instant, or the devices' energies would not add up
    state = svc.scada.state.values
    live = {key: state.get(key[0], {}).get(key[1]) for key in set(wanted)}

    def row(r: Any) -> tuple[float, float]:
        return as_utc(r[0]).timestamp(), float("nan") if r[1] is None else float(r[1])

    with svc.store.engine.connect() as conn:
        for key in sorted(set(wanted)):
            device, name = key
            one = sa.select(t.ts, t.value).where(t.site == site, t.device == device, t.name == name)
            inside = one.where(t.ts >= start, t.ts < end)
            # the last value before the period (it holds at its start) and the first after it
            # (a counter rises towards it)
            got = [conn.execute(one.where(t.ts < start).order_by(t.ts.desc()).limit(1)).first()]
            later = conn.execute(one.where(t.ts >= end).order_by(t.ts).limit(1)).first()
            if later is not None:
                after[key] = row(later)
            if counters:
                got += _counter_readings(conn, one, start, end)
            else:
                got += list(conn.execute(inside.order_by(t.ts)))
            points = [row(r) for r in got if r is not None]
            by_point[key] = sorted(set(points))
    for key, points in by_point.items():  # the latest value, not yet stored
        v = live.get(key)
        if v is None or not (t0 <= v.ts <= t1) or key in after:  # "now" is the end
            continue
        ts = as_utc(v.ts).timestamp()
        if not points or ts > points[-1][0]:
            points.append((ts, v.value))
    for key, last_after in after.items():
        by_point[key].append(last_after)
    series = {}
    for key, points in by_point.items():
        arr = np.array(points, dtype=float).reshape(-1, 2)
        series[key] = (arr[:, 0], arr[:, 1])
    return _Readings(series)


MARKS = 32


def _counter_readings(
    conn: sa.Connection, one: sa.Select[Any], start: datetime, end: datetime
) -> list[Any]:
    """A counter's readings in a period that tell its energy: the first at or after each of a
    few instants spread over the period (one a day, 4 to ``MARKS``) and its last; between two
    that fall (the counter restarted), all. Between readings that rise, the ones left out add
    nothing: a month of a counter is read in a few dozen indexed queries, not 40,000 rows."""
    t = point_history.c
    marks = min(max((end - start).days + 1, 4), MARKS)  # a month: one a day
    step = (end - start) / marks
    # one bound each way on the index, or SQLite scans from the start to the mark
    got = [
        conn.execute(
            one.where(t.ts >= start + k * step, t.ts < end).order_by(t.ts).limit(1)
        ).first()
        for k in range(marks)
    ]
    got.append(
        conn.execute(one.where(t.ts >= start, t.ts < end).order_by(t.ts.desc()).limit(1)).first()
    )
    seen = sorted({(r.ts, r.value) for r in got if r is not None}, key=lambda r: r[0])
    out: list[Any] = list(seen)
    for (a, va), (b, vb) in itertools.pairwise(seen):
        if va is None or vb is None or vb < va:
            out += list(conn.execute(one.where(t.ts > a, t.ts < b).order_by(t.ts)))
    return out


CHUNK = timedelta(days=1)
SETTLED = timedelta(hours=1)
_settled: dict[tuple[object, ...], tuple[float, float] | None] = {}
"""Energy of power signals over past days (a month is asked again and again): each day's is
kept once its history is settled, an hour after it ended."""


def _power(
    svc: ApiServices, device: str, name: str, start: datetime, end: datetime
) -> tuple[float, float] | None:
    """``power_kwh`` of a stored power signal over ``[start, end)``, a day at a time; None if
    nothing of it was stored."""
    total: tuple[float, float] | None = None
    now = svc.clock.now()
    c0 = start
    while c0 < end:
        c1 = min(c0 + CHUNK, end)
        key = (svc.store.url, svc.site.site.id, device, name, c0, c1)
        if key in _settled:
            part = _settled[key]
        else:
            s = _read(svc, [(device, name)], c0, c1).get(device, name)
            part = None if s is None else power_kwh(*s, c0.timestamp(), c1.timestamp())
            if c1 <= now - SETTLED:
                if len(_settled) > 100_000:
                    _settled.clear()
                _settled[key] = part
        if part is not None:
            total = part if total is None else (total[0] + part[0], total[1] + part[1])
        c0 = c1
    return total


def _energy(
    data: _Readings, device: str, role: str, t0: float, t1: float
) -> tuple[float, float, Literal["counter", "power"]] | None:
    """(out, in) of one device over ``[t0, t1)`` from its counters, or None without them."""
    c_out, c_in, _ = POINTS[role]
    s_out, s_in = data.get(device, c_out), data.get(device, c_in)
    if s_out is not None and (c_in is None or s_in is not None):
        out = counter_kwh(*s_out, t0, t1)
        into = counter_kwh(*s_in, t0, t1) if s_in is not None else 0.0
        return out, into, "counter"
    return None


@dataclass(frozen=True)
class _Thing:
    device: str
    name: str | None
    kind: str
    role: str  # generator, battery, meter, pcc


def _things(svc: ApiServices, seen: Scope) -> tuple[list[_Thing], list[str]]:
    """What the caller's boundary holds (with the meters the caller may see), and its meters
    at the boundary: those whose main meter the caller does not see."""
    s = svc.site
    things = []
    for d in s.devices:
        role = "generator" if d.kind in GENERATORS else "battery" if d.kind == "battery" else None
        if role and seen.sees_device(d.id):
            things.append(_Thing(d.id, getattr(d, "name", None), d.kind, role))
    for a in svc.assets().values():  # added at run time
        role = "generator" if a.family in GENERATORS else "battery" if a.family == "battery" else ""
        known = any(x.device == a.id for x in things)
        if role and a.origin == "added" and seen.sees_device(a.id) and not known:
            things.append(_Thing(a.id, None, a.family, role))
    mine = {m.id for m in s.meters if seen.sees_device(m.id)}
    top = [m.id for m in s.meters if m.id in mine and m.parent not in mine]
    for m in s.meters:
        if m.id in mine:
            things.append(_Thing(m.id, None, "meter", "meter"))
    if seen.everything:
        things.append(_Thing("pcc", "point of common coupling", "pcc", "pcc"))
    return things, top


@router.get("/energy", response_model=EnergyOut)
def energy_of(
    period: Period = Query(
        "today", description="today so far, a day (its date), or a month (a date in it)"
    ),
    on: date | None = Query(
        None, alias="date", description="a local date of the site, e.g. 2026-06-01"
    ),
    svc: ApiServices = Depends(services),
    seen: Scope = Depends(scope),
) -> EnergyOut:
    """Energy per source and sink over the site's local day or month (MEG time; so far, for
    the current ones), with self-sufficiency and self-consumption: for the MEG at its PCC, or
    a prosumer's own premises at their meters. From the energy counters the historian stored,
    or power integrated."""
    tz = svc.site.site.timezone
    if on is not None and not EARLIEST.date() <= on < LATEST.date():
        raise HTTPException(422, "give a date between 1970 and 2200")
    try:
        start, end = period_bounds(period, svc.clock.now(), tz, on)
    except ValueError as err:
        raise HTTPException(422, str(err)) from None
    things, top = _things(svc, seen)
    # counters first; the power of what has none (the PCC, a device without registers)
    counted = {(x.device, n) for x in things for n in POINTS[x.role][:2] if n is not None}
    data = _read(svc, counted, start, end, counters=True)
    t0, t1 = start.timestamp(), end.timestamp()
    measured: dict[str, tuple[float, float, Literal["counter", "power"]]] = {}
    for x in things:
        e = _energy(data, x.device, x.role, t0, t1)
        if e is not None:
            measured[x.device] = e
        elif (p := _power(svc, x.device, POINTS[x.role][2], start, end)) is not None:
            measured[x.device] = (p[0], p[1] if POINTS[x.role][1] else 0.0, "power")
    out = {x.device: measured[x.device][0] if x.device in measured else 0.0 for x in things}
    into = {x.device: measured[x.device][1] if x.device in measured else 0.0 for x in things}
    generation: dict[str, float] = {}
    for x in things:
        if x.role == "generator":
            key = GENERATORS[x.kind]
            generation[key] = generation.get(key, 0.0) + out[x.device]
    batteries = [x.device for x in things if x.role == "battery"]
    discharged = sum(out[b] for b in batteries)
    charged = sum(into[b] for b in batteries)

    # the loads behind each meter, a main meter's less what its sub-meters took (their own)
    loads: dict[str, float] = {}
    kinds = {c.id: c.kind for c in svc.site.customers}
    seen_meters = [m for m in svc.site.meters if m.id in out]
    for m in seen_meters:
        behind = set(m.devices)
        generators = [x.device for x in things if x.role == "generator" and x.device in behind]
        subs = [c.id for c in seen_meters if c.parent == m.id]
        used = premises_kwh(
            imported=out[m.id] - sum(out[c] for c in subs),
            exported=into[m.id] - sum(into[c] for c in subs),
            generated=sum(out[g] for g in generators),
            discharged=sum(out[b] for b in batteries if b in behind),
            charged=sum(into[b] for b in batteries if b in behind),
        )
        key = LOADS_OF[kinds.get(m.customer, "community")]  # the MEG's own plant: community
        loads[key] = loads.get(key, 0.0) + used
    if seen.everything:
        boundary: Literal["site", "premises"] = "site"
        imported, exported = out["pcc"], into["pcc"]
    else:
        boundary = "premises"
        imported, exported = sum(out[m] for m in top), sum(into[m] for m in top)
    b = Balance(
        generation=generation,
        discharged=discharged,
        charged=charged,
        imported=imported,
        exported=exported,
        loads=loads,
    )
    heat: dict[str, float] = {}
    if seen.everything:
        stores = [d.id for d in svc.site.devices if d.kind == "heat_storage"]
        for name, key in (("heat_kw", "chp_heat"), ("heat_demand_kw", "heat_demand")):
            parts = [_power(svc, h, name, start, end) for h in stores]
            heat[key] = sum(p[0] for p in parts if p is not None)

    def kwh(v: float) -> float:
        return round(v, 3) + 0.0  # Wh; never -0.0

    return EnergyOut(
        period=period,
        start=start,
        end=end,
        timezone=tz,
        boundary=boundary,
        sources={k: kwh(v) for k, v in b.sources().items()},
        # premises have their loads behind their own meter: nothing goes unmetered
        sinks={
            k: kwh(v)
            for k, v in b.sinks().items()
            if not (boundary == "premises" and k == "unmetered")
        },
        heat={k: kwh(v) for k, v in heat.items()},
        generation_kwh=kwh(b.generation_kwh),
        consumption_kwh=kwh(b.consumption_kwh),
        self_sufficiency=None if b.self_sufficiency is None else round(b.self_sufficiency, 4),
        self_consumption=None if b.self_consumption is None else round(b.self_consumption, 4),
        devices=[
            DeviceEnergy(
                device=x.device,
                name=x.name,
                kind=x.kind,
                out_kwh=kwh(measured[x.device][0]),
                in_kwh=kwh(measured[x.device][1]),
                measured_by=measured[x.device][2],
            )
            for x in things
            if x.device in measured
        ],
    )


@router.get("/points/{device}/{name}", response_model=PointOut)
def point_detail(
    device: str, name: str, svc: ApiServices = Depends(services), seen: Scope = Depends(scope)
) -> PointOut:
    """What one point is: its unit, and its latest value."""
    try:
        unit = unit_of(name)
    except KeyError:
        raise HTTPException(404, f"no point name {name!r} in the vocabulary") from None
    seen.device(device)
    v = svc.scada.state.values.get(device, {}).get(name)
    if v is None:
        return PointOut(device=device, name=name, unit=unit, value=None, ts=None, quality=None)
    return PointOut(
        device=device,
        name=name,
        unit=unit,
        value=v.value if v.value == v.value else None,
        ts=v.ts,
        quality=str(v.quality),
    )
