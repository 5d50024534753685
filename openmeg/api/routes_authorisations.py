"""Operators' signed authorisations for commands and device adds sent on the bus (by an HMI or
the command line): a short-lived token bound to one command or one device address."""

from __future__ import annotations

import math

from fastapi import APIRouter, Depends, HTTPException
from pydantic import BaseModel, ConfigDict, Field

from openmeg.api.auth import ERRORS, principal, services
from openmeg.api.context import ApiServices
from openmeg.core.command_auth import COMMAND_TTL_S, CommandAuthority
from openmeg.core.identity import Principal
from openmeg.core.messages import parse_device_address

router = APIRouter(prefix="/api/v1", responses=ERRORS)


class CommandAuthorisationIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    device: str = Field(min_length=1, max_length=64)
    name: str = Field(min_length=1, max_length=64)
    value: float


class DeviceAddAuthorisationIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    address: str = Field(min_length=1, max_length=300, description="HOST:PORT:UNIT")


class AuthorisationOut(BaseModel):
    authorisation: str = Field(description="the signed token to carry in the bus message")
    expires_in_s: float


def _authority(svc: ApiServices) -> CommandAuthority:
    if svc.authority is None:
        raise HTTPException(503, "this API signs no authorisations: it serves no live MEG")
    return svc.authority


def _issued(
    svc: ApiServices,
    who: Principal,
    action: str,
    target: str,
    token: str,
    detail: dict[str, object] | None = None,
) -> AuthorisationOut:
    """An authorisation handed out, audited."""
    svc.audit.append(
        ts=svc.clock.now(), actor=who.name, action=action, target=target, detail=detail
    )
    return AuthorisationOut(authorisation=token, expires_in_s=COMMAND_TTL_S)


@router.post("/commands/authorisations", response_model=AuthorisationOut)
def command_authorise(
    body: CommandAuthorisationIn,
    who: Principal = Depends(principal),
    svc: ApiServices = Depends(services),
) -> AuthorisationOut:
    """An authorisation of one command (``device/name = value``), valid a minute, used once."""
    authority = _authority(svc)
    if not math.isfinite(body.value):
        raise HTTPException(422, f"a command value is a finite number, not {body.value}")
    token = authority.sign_command(who, body.device, body.name, body.value, svc.wall.now())
    target = f"{body.device}/{body.name}"
    return _issued(svc, who, "command_authorised", target, token, {"value": body.value})


@router.post("/devices/authorisations", response_model=AuthorisationOut)
def device_add_authorise(
    body: DeviceAddAuthorisationIn,
    who: Principal = Depends(principal),
    svc: ApiServices = Depends(services),
) -> AuthorisationOut:
    """An authorisation to add the device at ``HOST:PORT:UNIT``, valid a minute, used once."""
    authority = _authority(svc)
    try:
        parse_device_address(body.address)
    except ValueError as err:
        raise HTTPException(422, str(err)) from err
    token = authority.sign_device_add(who, body.address, svc.wall.now())
    return _issued(svc, who, "device_add_authorised", body.address, token)
