"""A premises' building automation (Y.2071 clause 9.3): its BAS points now, commands to its
equipment, its supply status, the efficiency findings and the daily and monthly reports. For
the operator (and the auditor, reading) and for the premises' own customer (their prosumer
login); a building's BAS is its owners'."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, HTTPException, Query, Response
from fastapi import Path as PathParam
from pydantic import BaseModel, ConfigDict, Field

from openmeg.api.auth import ERRORS, principal, scope, services
from openmeg.api.context import ApiServices, Scope
from openmeg.core.errors import CommandError, OpenMegError
from openmeg.core.identity import Principal
from openmeg.customer.bems import Bems
from openmeg.customer.bems_diagnosis import findings_of, report_of
from openmeg.customer.supply_status import owners_of, supply_status

router = APIRouter(prefix="/api/v1/bas", responses=ERRORS)
Premises = Annotated[str, PathParam(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.\-]*$", max_length=64)]
EARLIEST, LATEST = date(1970, 1, 1), date(2200, 1, 1)


class _Out(BaseModel):
    model_config = ConfigDict(extra="forbid")


class BasPointOut(_Out):
    equipment: str
    point: str
    value: float | None
    unit: str
    quality: Literal["good", "invalid"]
    why: str = ""
    writable: bool
    low: float | None = None
    high: float | None = None


class BasPointsOut(_Out):
    bas: str
    premises: str
    ts: datetime
    points: list[BasPointOut]


class BasCommandIn(_Out):
    equipment: str = Field(min_length=1, max_length=64)
    point: str = Field(min_length=1, max_length=64)
    value: float = Field(description="a finite number in the point's range")
    reason: str = Field("", max_length=200)


class BasCommandOut(_Out):
    equipment: str
    point: str
    value: float
    readback: float
    ts: datetime


class SupplyOut(_Out):
    supply: str
    p_kw: float
    live: bool
    own_kw: float
    devices: list[str]


class SupplyStatusOut(_Out):
    premises: str
    mode: str
    islanded: bool
    supplies: list[SupplyOut]
    shares: dict[str, float]
    own_kw: float


class FindingOut(_Out):
    equipment: str
    kind: str
    summary: str
    evidence: dict[str, float]
    start: datetime
    end: datetime
    kwh: float
    cost: float


def _bems(svc: ApiServices, seen: Scope, premises: str) -> Bems:
    """The energy management of ``premises``, if the caller may see it."""
    found = [b for b in svc.bems.values() if b.bas.premises == premises]
    if not found:
        raise HTTPException(404, f"{premises!r} has no building automation system")
    if not seen.everything and not owners_of(svc.site, premises) & seen.customers:
        raise HTTPException(403, "this is another customer's building: you may see your own")
    return found[0]


@router.get("/{premises}/points", response_model=BasPointsOut)
def bas_points(
    premises: Premises, svc: ApiServices = Depends(services), seen: Scope = Depends(scope)
) -> BasPointsOut:
    """Every point of the premises' BAS as last polled (an invalid one with why)."""
    bems = _bems(svc, seen, premises)
    last = bems.latest
    if last is None:
        raise HTTPException(409, f"the BAS {bems.bas.id} has not answered yet: try again soon")
    out = []
    for e, p, _ in bems.bas.objects():
        name = f"{e.id}.{p.name}"
        value = last.good.get(name)
        out.append(
            BasPointOut(
                equipment=e.id,
                point=p.name,
                value=value,
                unit=p.unit,
                quality="good" if value is not None else "invalid",
                why=last.bad.get(name, ""),
                writable=p.writable,
                low=p.low if p.writable else None,
                high=p.high if p.writable else None,
            )
        )
    return BasPointsOut(bas=bems.bas.id, premises=premises, ts=last.ts, points=out)


@router.post("/{premises}/commands", response_model=BasCommandOut)
async def bas_command(
    body: BasCommandIn,
    premises: Premises,
    who: Principal = Depends(principal),
    svc: ApiServices = Depends(services),
    seen: Scope = Depends(scope),
) -> BasCommandOut:
    """A schedule, setpoint, scene or arming written to the BAS and read back; audited."""
    target = f"{premises}/{body.equipment}/{body.point}"
    try:
        bems = _bems(svc, seen, premises)
    except HTTPException as err:
        svc.audit.append(
            ts=svc.clock.now(),
            actor=who.name,
            action="bas_command_refused",
            target=target[:256],
            detail={"value": repr(body.value), "reason": str(err.detail), "via": "api"},
        )
        raise
    try:
        done = await bems.command(
            body.equipment, body.point, body.value, actor=who.name, reason=body.reason
        )
    except CommandError as err:
        raise HTTPException(422, str(err)) from err
    return BasCommandOut(
        equipment=done.equipment,
        point=done.point,
        value=done.value,
        readback=done.readback,
        ts=done.ts,
    )


@router.get("/{premises}/supply", response_model=SupplyStatusOut)
def bas_supply(
    premises: Premises, svc: ApiServices = Depends(services), seen: Scope = Depends(scope)
) -> SupplyStatusOut:
    """Which supplies are live, their shares of the MEG's supply, and whether it is islanded."""
    _bems(svc, seen, premises)
    picture = svc.scada.snapshot()
    s = supply_status(svc.site, premises, mode=picture["mode"], devices=picture["devices"])
    return SupplyStatusOut(
        premises=s.premises,
        mode=s.mode,
        islanded=s.islanded,
        supplies=[
            SupplyOut(
                supply=x.supply, p_kw=x.p_kw, live=x.live, own_kw=x.own_kw, devices=list(x.devices)
            )
            for x in s.supplies
        ],
        shares=s.shares,
        own_kw=s.own_kw,
    )


@router.get("/{premises}/findings", response_model=list[FindingOut])
def bas_findings(
    premises: Premises, svc: ApiServices = Depends(services), seen: Scope = Depends(scope)
) -> list[FindingOut]:
    """The waste the efficiency diagnosis finds in the points kept so far, largest first."""
    bems = _bems(svc, seen, premises)
    try:
        found = findings_of(bems, svc.book)
    except OpenMegError as err:
        raise HTTPException(409, str(err)) from err
    return [
        FindingOut(
            equipment=f.equipment,
            kind=f.kind,
            summary=f.summary,
            evidence=f.evidence,
            start=f.start,
            end=f.end,
            kwh=f.kwh,
            cost=f.cost,
        )
        for f in found
    ]


@router.get("/{premises}/reports/{period}")
def bas_report(
    period: Literal["day", "month"],
    premises: Premises,
    day: date = Query(description="a day of the period, local (YYYY-MM-DD)"),
    format: Literal["html", "pdf"] = Query("html"),
    svc: ApiServices = Depends(services),
    seen: Scope = Depends(scope),
) -> Response:
    """The daily or monthly BAS report as HTML or PDF, ready to save or mail."""
    bems = _bems(svc, seen, premises)
    if not EARLIEST <= day < LATEST:
        raise HTTPException(422, "give a day between 1970 and 2200")
    try:
        data = report_of(bems, svc.book, day=day, period=period, fmt=format)
    except OpenMegError as err:
        raise HTTPException(409, str(err)) from err
    name = f"bas-{bems.bas.id}-{day:%Y-%m-%d}-{period}.{format}"
    media = "application/pdf" if format == "pdf" else "text/html; charset=utf-8"
    return Response(
        data, media_type=media, headers={"Content-Disposition": f'attachment; filename="{name}"'}
    )
