"""The MEG's operation: site, devices, live values and their history, commands, alarms, events."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from typing import Literal

import pandas as pd
from fastapi import APIRouter, Depends, HTTPException, Query, Response

from openmeg.api.auth import ERRORS, principal, scope, services
from openmeg.api.context import ApiServices, Scope
from openmeg.api.schemas import (
    AlarmOut,
    CommandIn,
    CommandOut,
    DeviceOut,
    EventOut,
    LiveOut,
    PointValue,
    SiteOut,
)
from openmeg.core.identity import Principal
from openmeg.core.points import UNIT_OF_NAME, PointId
from openmeg.core.store import as_utc
from openmeg.operation.scada import Alarm

router = APIRouter(prefix="/api/v1", responses=ERRORS)
WRITABLE = frozenset({"p_set_kw", "p_limit_pct", "connected", "switch_command"})
MAX_SPAN = timedelta(days=31)
EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)
LATEST = datetime(2200, 1, 1, tzinfo=UTC)
RESOLUTIONS = {"raw": None, "1min": "1min", "15min": "15min", "1h": "1h"}


def span(start: datetime, end: datetime) -> tuple[datetime, datetime]:
    """A period asked for: with time zones, in order, at most 31 days."""
    if start.tzinfo is None or end.tzinfo is None:
        raise HTTPException(422, "give start and end with a time zone, e.g. 2026-10-01T00:00Z")
    try:
        t0, t1 = as_utc(start), as_utc(end)
    except (OverflowError, ValueError):  # year 1 east of UTC, year 9999 west of it
        raise HTTPException(422, "give instants between 1970 and 2200") from None
    if t1 <= t0:
        raise HTTPException(422, "end must come after start")
    if not (t0 >= EARLIEST and t1 <= LATEST):
        raise HTTPException(422, "give instants between 1970 and 2200")
    if t1 - t0 > MAX_SPAN:
        raise HTTPException(422, "at most 31 days at a time")
    return t0, t1


@router.get("/site", response_model=SiteOut)
def site_summary(svc: ApiServices = Depends(services), seen: Scope = Depends(scope)) -> SiteOut:
    s = svc.site
    customers = [c.id for c in s.customers if seen.everything or c.id in seen.customers]
    return SiteOut(
        id=s.site.id,
        name=s.site.name,
        timezone=s.site.timezone,
        currency=s.site.currency,
        frequency_hz=s.site.frequency_hz,
        field=svc.field_kind,
        devices=len(s.devices),
        meters=len(s.meters),
        customers=customers,
    )


def _device(svc: ApiServices, device_id: str) -> DeviceOut:
    values = svc.scada.state.values.get(device_id, {})
    live = {n: v.value for n, v in values.items() if v.value == v.value}
    d = next((d for d in svc.site.devices if d.id == device_id), None)
    asset = svc.assets().get(device_id)
    if d is not None:
        return DeviceOut(
            id=d.id,
            kind=d.kind,
            bus=d.bus,
            owner=getattr(d, "owner", None),
            domain=svc.site.domains().get(d.id, "der"),
            values=live,
            origin="site",
            monitored_only=asset.monitored_only if asset else None,
        )
    if asset is None:
        raise HTTPException(404, f"no device {device_id!r}")
    return DeviceOut(
        id=asset.id,
        kind=asset.family,
        bus="",
        owner=None,
        domain="customer" if asset.family == "meter" else "der",
        values=live,
        origin=asset.origin,
        address=str(asset.address),
        models=list(asset.models),
        monitored_only=asset.monitored_only,
    )


def _device_ids(svc: ApiServices) -> list[str]:
    """The site file's devices, then those added at run time."""
    ids = [d.id for d in svc.site.devices]
    added = [a.id for a in svc.assets().values() if a.origin == "added" and a.id not in ids]
    return ids + added


@router.get("/devices", response_model=list[DeviceOut])
def devices_list(
    svc: ApiServices = Depends(services), seen: Scope = Depends(scope)
) -> list[DeviceOut]:
    return [_device(svc, d) for d in _device_ids(svc) if seen.sees_device(d)]


@router.get("/devices/{device}", response_model=DeviceOut)
def device_detail(
    device: str, svc: ApiServices = Depends(services), seen: Scope = Depends(scope)
) -> DeviceOut:
    out = _device(svc, device)
    seen.device(device)
    return out


def live_body(svc: ApiServices, seen: Scope) -> bytes:
    """The live snapshot as sent: encoded once per control cycle and scope."""
    st = svc.status()
    key = (st.cycles, len(svc.scada.state.alarms), *seen.key())
    body = svc.live_cache.get(key)
    if body is None:
        state = svc.scada.state
        devices = {
            d: {n: v.value for n, v in pts.items() if v.value == v.value}
            for d, pts in state.values.items()
            if seen.sees_device(d) or d == "pcc"
        }
        live = LiveOut(
            ts=st.ts,
            mode=st.mode,
            frequency_hz=st.frequency_hz,
            import_kw=st.import_kw,
            cycles=st.cycles,
            cycle_ms=st.cycle_ms,
            devices=devices,
            alarms=[a.key for a in svc.scada.alarms(active_only=True)] if seen.everything else [],
        )
        body = live.model_dump_json().encode()
        if len(svc.live_cache) > 64:
            svc.live_cache.clear()
        svc.live_cache[key] = body
    return body


@router.get("/live", response_model=LiveOut)
async def live_snapshot(
    svc: ApiServices = Depends(services), seen: Scope = Depends(scope)
) -> Response:
    """The MEG now: mode, frequency, exchange at the PCC, every device's latest values."""
    return Response(live_body(svc, seen), media_type="application/json")


@router.get("/points/{device}/{name}/history", response_model=list[PointValue])
def point_history(
    device: str,
    name: str,
    start: datetime = Query(...),
    end: datetime = Query(...),
    resolution: Literal["raw", "1min", "15min", "1h"] = "raw",
    svc: ApiServices = Depends(services),
    seen: Scope = Depends(scope),
) -> list[PointValue]:
    """Stored values of one point; means over 1 min, 15 min or 1 h if asked."""
    if name not in UNIT_OF_NAME:
        raise HTTPException(404, f"no point name {name!r} in the vocabulary")
    seen.device(device)
    t0, t1 = span(start, end)
    try:
        point = PointId(site=svc.site.site.id, device=device, name=name)
    except ValueError as err:
        raise HTTPException(404, f"no such point: {err}") from err
    points = svc.store.history(point, t0, t1)
    rule = RESOLUTIONS[resolution]
    if rule is None:
        return [
            PointValue(ts=p.ts, value=p.value if p.value == p.value else None, quality=p.quality)
            for p in points[:20_000]
        ]
    series = pd.Series(
        [p.value for p in points], index=pd.DatetimeIndex([p.ts for p in points]), dtype=float
    )
    means = series.resample(rule).mean().dropna() if len(series) else series
    return [
        PointValue(ts=t.to_pydatetime(), value=float(v), quality="good") for t, v in means.items()
    ]


@router.post(
    "/commands",
    response_model=CommandOut,
)
async def send_command(
    body: CommandIn, who: Principal = Depends(principal), svc: ApiServices = Depends(services)
) -> CommandOut:
    """Write a point on a device (a setpoint, a limit, a switch); acknowledged by the device.
    A command refused before it reaches the field is audited with its reason too."""

    def refused(reason: str) -> HTTPException:
        svc.audit.append(
            ts=svc.clock.now(),
            actor=who.name,
            action="command_refused",
            target=f"{body.device}/{body.name}",
            detail={"value": repr(body.value), "reason": reason, "via": "api"},
        )
        return HTTPException(422, reason)

    known = set(_device_ids(svc)) | {"pcc"}
    known |= {s.id for s in svc.site.network.switches} | {t.id for t in svc.site.network.ties}
    if body.device not in known:
        raise refused(f"no device {body.device!r}")
    if body.name not in WRITABLE:
        raise refused(f"{body.name!r} cannot be written; writable: {', '.join(sorted(WRITABLE))}")
    if not math.isfinite(body.value):
        raise refused(f"a command value is a finite number, not {body.value}")
    result = await svc.command(body.device, body.name, body.value, who.name, body.reason)
    if not result.accepted:
        raise HTTPException(422, f"refused by {body.device}: {result.reason}")
    return CommandOut(
        device=result.device,
        name=result.name,
        value=result.value,
        accepted=result.accepted,
        reason=result.reason,
        ts=result.ts,
    )


def _alarm_out(a: Alarm) -> AlarmOut:
    return AlarmOut.model_validate(a)  # its fields, and its key


@router.get("/alarms", response_model=list[AlarmOut])
def alarms_list(
    active: bool = Query(True, description="only the active ones"),
    svc: ApiServices = Depends(services),
    seen: Scope = Depends(scope),
) -> list[AlarmOut]:
    """The alarms (a prosumer: those of their own devices)."""
    alarms = svc.scada.alarms(active_only=active)
    return [_alarm_out(a) for a in alarms if seen.everything or seen.sees_device(a.source)]


@router.post("/alarms/{source}/{code}/ack", response_model=AlarmOut)
def alarm_acknowledge(
    source: str,
    code: str,
    who: Principal = Depends(principal),
    svc: ApiServices = Depends(services),
) -> AlarmOut:
    now = svc.clock.now()
    try:
        alarm = svc.scada.acknowledge(f"{source}/{code}", user=who.name, ts=now)
    except KeyError as err:
        raise HTTPException(404, str(err.args[0])) from err
    svc.audit.append(ts=now, actor=who.name, action="alarm_ack", target=alarm.key)
    return _alarm_out(alarm)


@router.get("/events", response_model=list[EventOut])
def events_list(
    kind: str | None = Query(None, max_length=32),
    limit: int = Query(200, ge=1, le=5000),
    svc: ApiServices = Depends(services),
    who: Principal = Depends(principal),
) -> list[EventOut]:
    rows = svc.store.events(svc.site.site.id, kind=kind)[-limit:]
    return [
        EventOut(
            id=r["id"],
            ts=as_utc(r["ts"]),
            kind=r["kind"],
            source=r["source"],
            code=r["code"],
            text=r["text"],
            severity=r["severity"],
        )
        for r in rows
    ]
