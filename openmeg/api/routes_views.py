"""What the operator's views need beyond the domain routes: the event log by category, the
voltage at each metered bus against EN 50160, a customer's meter day with its VEE flags and
versions, a month's issued bills, and the simulator panel's controls (a simulated field only)."""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from datetime import UTC, date, datetime, timedelta
from typing import Literal
from zoneinfo import ZoneInfo

import numpy as np
import sqlalchemy as sa
from fastapi import APIRouter, Depends, HTTPException, Path, Query
from pydantic import BaseModel, ConfigDict, Field

from openmeg.api.auth import ERRORS, principal, services
from openmeg.api.context import ApiServices
from openmeg.api.field_control import FieldControlError
from openmeg.api.roles import OPERATOR, OVERSIGHT, ROLE_MATRIX
from openmeg.core import en50160
from openmeg.core.identity import Principal
from openmeg.core.points import Quality
from openmeg.core.site import Site, network_of
from openmeg.core.store import as_utc, events
from openmeg.operation.mdms.validated import ValidatedReadings
from openmeg.operation.scada import WHY, LiveValue
from openmeg.provider.issued_bills import IssuedBills

router = APIRouter(prefix="/api/v1", responses=ERRORS)

ROLE_MATRIX.update(
    {
        "view_events": OVERSIGHT,
        "view_voltages": OVERSIGHT,
        "view_meter_day": OVERSIGHT,
        "view_bills": OVERSIGHT,
        "sim_status": OPERATOR,
        "sim_utility": OPERATOR,
        "sim_load_step": OPERATOR,
        "sim_fault": OPERATOR,
        "sim_repair": OPERATOR,
    }
)
"""The views' routes in the role matrix (deny by default: a route missing there is refused)."""


class _Out(BaseModel):
    model_config = ConfigDict(extra="forbid")


# -- the event log ------------------------------------------------------------------------

Category = Literal["mode", "command", "switch", "device", "alarm", "simulation", "other"]
CATEGORIES: tuple[str, ...] = ("mode", "command", "switch", "device", "alarm", "simulation")
KINDS_OF: dict[str, tuple[str, ...]] = {
    "mode": ("mode",),
    "command": ("command",),
    "switch": ("command", "flisr"),
    "device": ("device", "alarm", "alarm_clear"),
    "alarm": ("alarm", "alarm_clear", "alarm_ack"),
    "simulation": ("simulation",),
}
"""The store's event kinds each category is found among."""
DEVICE_ALARMS = frozenset({"device_unreachable"})
"""Alarms that say a device was lost (raised) or is back (cleared)."""
SWITCHING = re.compile(r"/switch_command = ")


class ViewEventOut(_Out):
    id: int
    ts: datetime
    category: Category = Field(
        description="mode change, command, switch operation, device added or lost, alarm, "
        "event of the simulated world, or other"
    )
    kind: str = Field(description="the event's kind as stored")
    source: str
    code: str
    text: str
    severity: str
    who: str | None = Field(description="the user behind it (commands, adds, acknowledgements)")
    why: str | None = Field(description="the user's reason, if they gave one")


def category_of(kind: str, code: str, text: str) -> Category:
    """The event log's category of a stored event."""
    if kind == "mode":
        return "mode"
    if kind == "flisr" or (kind == "command" and SWITCHING.search(text)):
        return "switch"
    if kind == "command":
        return "command"
    if kind == "device" or (kind in ("alarm", "alarm_clear") and code in DEVICE_ALARMS):
        return "device"
    if kind in ("alarm", "alarm_clear", "alarm_ack"):
        return "alarm"
    if kind == "simulation":
        return "simulation"
    return "other"


def _who_why(kind: str, source: str, text: str) -> tuple[str | None, str | None]:
    if kind == "alarm_ack":
        return text.removeprefix("acknowledged by ") or None, None
    if kind in ("command", "device", "simulation", "meter_edit"):
        _, sep, why = text.partition(WHY)
        return source, (why if sep else None)
    return None, None


@router.get("/views/events", response_model=list[ViewEventOut])
def view_events(
    category: Category | None = Query(None, description="only this category"),
    limit: int = Query(200, ge=1, le=2000),
    before: int | None = Query(None, ge=1, le=2**62, description="events older than this id"),
    svc: ApiServices = Depends(services),
    who: Principal = Depends(principal),
) -> list[ViewEventOut]:
    """The event log, newest first: mode changes, commands (who and why), switch operations,
    devices added or lost, alarms, the simulated world's events."""
    e = events.c
    q = sa.select(e.id, e.ts, e.kind, e.source, e.code, e.text, e.severity).where(
        e.site == svc.site.site.id
    )
    if category is not None and category != "other":
        q = q.where(e.kind.in_(KINDS_OF[category]))
    if before is not None:
        q = q.where(e.id < before)
    out: list[ViewEventOut] = []
    chunk = max(limit, 500)
    with svc.store.engine.connect() as conn:
        while len(out) < limit:
            rows = conn.execute(q.order_by(e.id.desc()).limit(chunk)).all()
            for r in rows:
                cat = category_of(r.kind, r.code, r.text)
                if category is not None and cat != category:
                    continue
                person, why = _who_why(r.kind, r.source, r.text)
                out.append(
                    ViewEventOut(
                        id=r.id,
                        ts=as_utc(r.ts),
                        category=cat,
                        kind=r.kind,
                        source=r.source,
                        code=r.code,
                        text=r.text,
                        severity=r.severity,
                        who=person,
                        why=why,
                    )
                )
                if len(out) == limit:
                    break
            if len(rows) < chunk:
                break
            q = q.where(e.id < rows[-1].id)
    return out


# -- voltages per bus ---------------------------------------------------------------------


class BusVoltageOut(_Out):
    bus: str
    meters: list[str] = Field(description="the meters at this bus that measure its voltage")
    nominal_v: float = Field(description="nominal phase-to-neutral voltage Un [V]")
    voltage_v: float | None = Field(description="the latest measured voltage [V]")
    voltage_pu: float | None = Field(description="voltage_v / nominal_v")
    band: int | None = Field(description="0 within ±10 %, 1 outside ±10 %, 2 outside +10/−15 %")
    band_name: str | None
    ts: datetime | None


class GridVoltageOut(_Out):
    voltage_min_pu: float | None
    voltage_max_pu: float | None
    source: Literal["network", "meters"] = Field(
        description="the network's own extremes, or (without them) those of the metered buses"
    )
    band_min: int | None
    band_max: int | None


class VoltagesOut(_Out):
    ts: datetime | None = Field(description="the newest measurement shown")
    band_names: dict[int, str]
    buses: list[BusVoltageOut]
    grid: GridVoltageOut = Field(description="the network's lowest and highest voltage (p.u.)")


_NETWORKS: dict[tuple[str | None, str | None], tuple[dict[str, float], list[str]]] = {}


def _network(site: Site) -> tuple[dict[str, float], list[str]]:
    """The nominal phase voltages of the buses and the names of the lines of the site's
    network (read once per network)."""
    key = (site.network.catalogue, None if site.network.file is None else str(site.network.file))
    if key not in _NETWORKS:
        net = network_of(site)
        nominal = {
            str(n): float(kv) * 1000.0 / math.sqrt(3.0)
            for n, kv in zip(net.bus["name"], net.bus["vn_kv"], strict=True)
        }
        _NETWORKS[key] = nominal, sorted(str(n) for n in net.line["name"])
    return _NETWORKS[key]


def nominal_phase_v(site: Site) -> dict[str, float]:
    """Each bus's nominal phase-to-neutral voltage [V], from the site's network."""
    return _network(site)[0]


def meter_buses(site: Site) -> dict[str, list[str]]:
    """The metered buses, each with its meters (a meter sits at its first device's bus, a
    meter without devices at the PCC's)."""
    bus_of = {d.id: d.bus for d in site.devices}
    out: dict[str, list[str]] = {}
    for m in site.meters:
        bus = bus_of.get(m.devices[0]) if m.devices else None
        out.setdefault(bus or site.utility.pcc_bus, []).append(m.id)
    return out


def _band(pu: float | None) -> int | None:
    return None if pu is None else int(en50160.band(np.array([pu]))[0])


def voltages_of(
    site: Site, nominal: Mapping[str, float], values: Mapping[str, Mapping[str, LiveValue]]
) -> VoltagesOut:
    """Each metered bus's latest good voltage (the mean of its meters'), per unit of the bus's
    nominal voltage, with its EN 50160 band; the network's extremes (``grid/voltage_min_pu``,
    ``grid/voltage_max_pu``) or, without them, those of the metered buses."""

    def good(v: LiveValue | None) -> bool:
        return v is not None and v.quality is Quality.GOOD and math.isfinite(v.value)

    rows: list[BusVoltageOut] = []
    for bus, meters in meter_buses(site).items():
        found = [values.get(m, {}).get("voltage_v") for m in meters]
        ok = [x for x in found if x is not None and good(x)]
        un = nominal.get(bus)
        v = sum(x.value for x in ok) / len(ok) if ok else None
        pu = v / un if v is not None and un else None
        b = _band(pu)
        rows.append(
            BusVoltageOut(
                bus=bus,
                meters=meters,
                nominal_v=round(un, 3) if un else 0.0,
                voltage_v=v,
                voltage_pu=pu,
                band=b,
                band_name=None if b is None else en50160.BAND_NAMES[b],
                ts=max((x.ts for x in ok), default=None),
            )
        )
    grid = values.get("grid", {})

    def pu_of(name: str) -> float | None:
        lv = grid.get(name)
        return lv.value if lv is not None and good(lv) else None

    vmin, vmax = pu_of("voltage_min_pu"), pu_of("voltage_max_pu")
    source: Literal["network", "meters"] = "network"
    if vmin is None or vmax is None:
        measured = [r.voltage_pu for r in rows if r.voltage_pu is not None]
        vmin, vmax = min(measured, default=None), max(measured, default=None)
        source = "meters"
    return VoltagesOut(
        ts=max((r.ts for r in rows if r.ts is not None), default=None),
        band_names=dict(en50160.BAND_NAMES),
        buses=sorted(rows, key=lambda r: r.bus),
        grid=GridVoltageOut(
            voltage_min_pu=vmin,
            voltage_max_pu=vmax,
            source=source,
            band_min=_band(vmin),
            band_max=_band(vmax),
        ),
    )


@router.get("/views/voltages", response_model=VoltagesOut)
def view_voltages(
    svc: ApiServices = Depends(services), who: Principal = Depends(principal)
) -> VoltagesOut:
    """The voltage now at every metered bus, in V and per unit of its nominal voltage, and its
    band of EN 50160 §4.2.2 (within Un ± 10 %; outside it; outside Un + 10 % / − 15 %)."""
    return voltages_of(svc.site, nominal_phase_v(svc.site), svc.scada.state.values)


# -- a customer's meter day with its VEE results --------------------------------------------

DAY = Query(
    ..., pattern=r"^(19[7-9]\d|2[01]\d\d)-\d\d-\d\d$", description="a local day, YYYY-MM-DD"
)


class IntervalOut(_Out):
    interval_start: datetime
    raw_kwh: float | None = Field(description="what the meter delivered")
    value_kwh: float | None = Field(description="the validated value (its newest version)")
    quality: str = Field(description="actual (good), estimated, edited, or missing")
    version: int = Field(description="0: the raw reading; 1, 2, ...: versions VEE or edits made")
    method: str
    user: str
    reason: str
    flags: list[str] = Field(description="the VEE rules this interval broke")


class MeterDayOut(_Out):
    meter: str
    customer: str
    channel: str
    day: str
    validated: bool = Field(description="whether VEE ran on this day")
    intervals: list[IntervalOut]


def local_day(day: str, tz: str) -> tuple[datetime, datetime]:
    """The UTC bounds of a local day of the site."""
    try:
        d = date.fromisoformat(day)
    except ValueError:
        raise HTTPException(422, f"{day!r} is no date: give YYYY-MM-DD") from None
    zone = ZoneInfo(tz)
    start = datetime(d.year, d.month, d.day, tzinfo=zone)
    end = datetime.combine(d + timedelta(days=1), datetime.min.time(), tzinfo=zone)
    return start.astimezone(UTC), end.astimezone(UTC)


def _num(v: float) -> float | None:
    return None if v != v else float(v)


@router.get("/views/meters/{meter}/day", response_model=MeterDayOut)
def view_meter_day(
    meter: str = Path(..., max_length=64),
    day: str = DAY,
    channel: Literal["import", "export"] = "import",
    svc: ApiServices = Depends(services),
    who: Principal = Depends(principal),
) -> MeterDayOut:
    """A meter's intervals of one local day: the raw kWh, the validated value with its VEE
    quality flag (actual, estimated, edited), version, method, who and why, and the rules
    VEE flagged."""
    m = next((m for m in svc.site.meters if m.id == meter), None)
    if m is None:
        raise HTTPException(404, f"no meter {meter!r}")
    t0, t1 = local_day(day, svc.site.site.timezone)
    vr = ValidatedReadings(svc.store, svc.site.site.id)
    raw = svc.readings.series(meter, channel, t0, t1)
    latest = vr.latest(meter, channel, t0, t1)
    flags = vr.flags(meter, channel, t0, t1)
    validated = bool(vr.status([meter], channel, [day])[0, 0] >= 0)
    rules: dict[datetime, list[str]] = {}
    for at, rule in zip(flags["interval_start"], flags["rule"], strict=True):
        rules.setdefault(at.to_pydatetime(), []).append(str(rule))
    rows: dict[datetime, IntervalOut] = {}
    for r in latest.itertuples(index=False):
        at = r.interval_start.to_pydatetime()
        q = "missing" if r.value_kwh != r.value_kwh else str(r.quality)
        rows[at] = IntervalOut(
            interval_start=at,
            raw_kwh=None,
            value_kwh=_num(r.value_kwh),
            quality="actual" if q == "good" else q,
            version=int(r.version),
            method=str(r.method),
            user=str(r.user),
            reason=str(r.reason),
            flags=rules.get(at, []),
        )
    for at_ts, v in raw.items():
        at = at_ts.to_pydatetime()
        if at in rows:
            rows[at].raw_kwh = _num(float(v))
    for at, found in rules.items():  # flagged with no value at all
        if at not in rows:
            rows[at] = IntervalOut(
                interval_start=at,
                raw_kwh=None,
                value_kwh=None,
                quality="missing",
                version=0,
                method="",
                user="",
                reason="",
                flags=found,
            )
    return MeterDayOut(
        meter=meter,
        customer=m.customer,
        channel=channel,
        day=day,
        validated=validated,
        intervals=[rows[k] for k in sorted(rows)],
    )


# -- issued bills -------------------------------------------------------------------------

PERIOD = Query(
    ...,
    pattern=r"^(19|20|21)\d\d-(0[1-9]|1[0-2])$",
    description="a month, YYYY-MM (01-12) of the years 1900 to 2199",
)


class IssuedBillOut(_Out):
    number: str
    revision: int
    kind: str
    issued_at: datetime
    customer: str
    meter: str
    tariff: str
    total: float


class BillsOut(_Out):
    period: str
    currency: str
    bills: list[IssuedBillOut] = Field(description="the newest revision of each customer's bill")
    buildings: list[str] = Field(description="buildings with basic charge statements")


@router.get("/views/bills", response_model=BillsOut)
def view_bills(
    period: str = PERIOD,
    svc: ApiServices = Depends(services),
    who: Principal = Depends(principal),
) -> BillsOut:
    """The bills issued for a month (the newest revision of each), by number."""
    newest = IssuedBills(svc.store, svc.site.site.id, svc.site.site.timezone).newest(period)
    bills = [
        IssuedBillOut(
            number=i.number,
            revision=i.revision,
            kind=i.kind,
            issued_at=i.issued_at,
            customer=i.bill.customer,
            meter=i.bill.meter,
            tariff=i.bill.tariff,
            total=float(i.bill.total),
        )
        for i in newest.values()
    ]
    return BillsOut(
        period=period,
        currency=svc.site.site.currency,
        bills=sorted(bills, key=lambda b: b.number),
        buildings=[b.id for b in svc.site.buildings],
    )


# -- the simulator panel --------------------------------------------------------------------


class SimOut(_Out):
    simulated: bool
    connected: bool = Field(description="whether the field's control interface is known")
    loads: list[str] = Field(description="loads that can take a step of extra demand")
    lines: list[str] = Field(description="lines of the network a fault can be put on")


class UtilityIn(_Out):
    available: bool = Field(description="false: take the utility grid down; true: bring it back")


class FaultIn(_Out):
    line: str = Field(min_length=1, max_length=64, description="a line of the network")


class FaultOut(_Out):
    line: str
    tripped: list[str] = Field(description="the switches the field's protection opened")
    dark_buses: list[str] = Field(description="the buses no longer supplied")


class LoadStepIn(_Out):
    kw: float = Field(ge=-1000.0, le=1000.0, allow_inf_nan=False, description="more demand, kW")


def _loads(site: Site) -> list[str]:
    return [d.id for d in site.devices if d.kind in ("load", "ev_charger")]


def _field(svc: ApiServices) -> None:
    if svc.field_kind != "simulated":
        raise HTTPException(409, "the MEG operates the site's own devices: nothing to simulate")
    if svc.field_control is None:
        raise HTTPException(409, "the simulated field's control interface is not connected")


async def _sim_event(
    svc: ApiServices, who: Principal, code: str, text: str, detail: dict[str, object]
) -> None:
    now = svc.clock.now()
    svc.store.add_event(
        ts=now, site=svc.site.site.id, kind="simulation", source=who.name, code=code, text=text
    )
    svc.audit.append(ts=now, actor=who.name, action="simulation", target=code, detail=detail)


@router.get("/sim", response_model=SimOut)
def sim_status(svc: ApiServices = Depends(services), who: Principal = Depends(principal)) -> SimOut:
    """What the simulator panel offers: only for openmeg's simulated field."""
    simulated = svc.field_kind == "simulated"
    return SimOut(
        simulated=simulated,
        connected=simulated and svc.field_control is not None,
        loads=_loads(svc.site) if simulated else [],
        lines=_network(svc.site)[1] if simulated else [],
    )


@router.post("/sim/utility", response_model=UtilityIn)
async def sim_utility(
    body: UtilityIn, svc: ApiServices = Depends(services), who: Principal = Depends(principal)
) -> UtilityIn:
    """The simulated world: the utility grid goes down, or comes back (not a command to the
    MEG: the MEG sees it at its PCC as it would a real outage)."""
    _field(svc)
    assert svc.field_control is not None
    try:
        await svc.field_control.utility(body.available)
    except FieldControlError as err:
        raise HTTPException(err.status, str(err)) from err
    text = f"{who.name}: the simulated utility grid " + (
        "comes back" if body.available else "goes down"
    )
    code = "utility_up" if body.available else "utility_down"
    await _sim_event(svc, who, code, text, {"available": body.available})
    return body


@router.post("/sim/loads/{load}/step", response_model=LoadStepIn)
async def sim_load_step(
    body: LoadStepIn,
    load: str = Path(..., max_length=64),
    svc: ApiServices = Depends(services),
    who: Principal = Depends(principal),
) -> LoadStepIn:
    """The simulated world: a load draws ``kw`` more (or less) from the field's next step."""
    _field(svc)
    assert svc.field_control is not None
    if load not in _loads(svc.site):
        raise HTTPException(404, f"no load {load!r}; loads: {', '.join(_loads(svc.site))}")
    try:
        await svc.field_control.load_step(load, body.kw)
    except FieldControlError as err:
        raise HTTPException(err.status, str(err)) from err
    text = f"{who.name}: the simulated load {load} draws {body.kw:+g} kW more"
    await _sim_event(svc, who, "load_step", text, {"load": load, "kw": body.kw})
    return body


@router.post("/sim/fault", response_model=FaultOut)
async def sim_fault(
    body: FaultIn, svc: ApiServices = Depends(services), who: Principal = Depends(principal)
) -> FaultOut:
    """The simulated world: a fault on a line. The field's protection trips the breaker
    nearest it; the MEG sees the trip and the fault indicators on the wire, as it would a
    real fault (its restoration, FLISR, then isolates the fault and restores the rest)."""
    _field(svc)
    assert svc.field_control is not None
    lines = _network(svc.site)[1]
    if body.line not in lines:
        raise HTTPException(404, f"no line {body.line!r} in the network; lines: {', '.join(lines)}")
    try:
        answer = await svc.field_control.fault(body.line)
    except FieldControlError as err:
        raise HTTPException(err.status, str(err)) from err
    out = FaultOut(
        line=body.line,
        tripped=[str(x) for x in _listed(answer.get("tripped"))],
        dark_buses=[str(x) for x in _listed(answer.get("dark_buses"))],
    )
    text = (
        f"{who.name}: a simulated fault on {body.line}; tripped: {', '.join(out.tripped) or 'none'}"
    )
    await _sim_event(svc, who, "fault", text, {"line": body.line, "tripped": out.tripped})
    return out


@router.post("/sim/fault/repair", response_model=FaultOut)
async def sim_repair(
    svc: ApiServices = Depends(services), who: Principal = Depends(principal)
) -> FaultOut:
    """The simulated world: the crew repairs the fault and resets the latched indicators; the
    switches stay where they are (the operator or FLISR closes them)."""
    _field(svc)
    assert svc.field_control is not None
    try:
        answer = await svc.field_control.repair()
    except FieldControlError as err:
        raise HTTPException(err.status, str(err)) from err
    line = str(answer.get("line", ""))
    await _sim_event(
        svc, who, "repair", f"{who.name}: the simulated fault on {line} is repaired", {"line": line}
    )
    return FaultOut(line=line, tripped=[], dark_buses=[])


def _listed(value: object) -> list[object]:
    return list(value) if isinstance(value, list) else []
