"""Logging in (OAuth2 password and client-credentials flows), who am I, users, the audit log."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Form, HTTPException, Query, Request

from openmeg.api.auth import ERRORS, TOKEN_URL, principal, services
from openmeg.api.client_address import client_address
from openmeg.api.context import ApiServices
from openmeg.api.schemas import (
    AuditCheck,
    AuditOut,
    Me,
    Problem,
    TokenOut,
    UserCreated,
    UserIn,
    UserOut,
)
from openmeg.core.identity import AuthError, Principal

public = APIRouter(tags=["auth"])
router = APIRouter(prefix="/api/v1", responses=ERRORS)


@public.post(
    TOKEN_URL,
    response_model=TokenOut,
    responses={
        401: {"model": Problem, "description": "wrong credentials"},
        422: {"model": Problem, "description": "a grant without its name or secret"},
        429: {"model": Problem, "description": "too many failed logins: wait"},
    },
)
def token(
    request: Request,
    grant_type: Annotated[str, Form(pattern="^(password|client_credentials)$")],
    username: Annotated[str, Form(max_length=128)] = "",
    password: Annotated[str, Form(max_length=1024)] = "",
    client_id: Annotated[str, Form(max_length=128)] = "",
    client_secret: Annotated[str, Form(max_length=1024)] = "",
    svc: ApiServices = Depends(services),
) -> TokenOut:
    """A token for a user (``password``) or an API client (``client_credentials``)."""
    name, secret, kind = (
        (username, password, "user")
        if grant_type == "password"
        else (client_id, client_secret, "client")
    )
    if not name or not secret:
        raise HTTPException(422, f"the {grant_type} grant needs a name and a secret")
    address = client_address(request.scope, svc.trusted_proxies)
    now = svc.clock.now()
    wait = svc.limiter.retry_after(name, address)
    if wait > 0:  # not audited: a flood of refusals would flood the log
        raise HTTPException(
            429,
            f"too many failed logins from {address}: wait {int(wait) + 1} s and try again",
            {"Retry-After": str(int(wait) + 1)},
        )
    try:
        who = svc.identities.authenticate(name, secret, kind=kind)
    except AuthError as err:
        svc.limiter.failed(name, address)
        svc.audit.append(
            ts=now, actor=name, action="login_failed", target=kind, detail={"from": address}
        )
        raise HTTPException(401, str(err), {"WWW-Authenticate": "Bearer"}) from err
    svc.limiter.succeeded(name, address)
    svc.audit.append(ts=now, actor=name, action="login", target=kind, detail={"from": address})
    return TokenOut(
        access_token=svc.tokens.issue(who, svc.wall.now()), expires_in=int(svc.tokens.ttl_s)
    )


@router.get("/me", response_model=Me)
def me(who: Principal = Depends(principal)) -> Me:
    return Me(name=who.name, role=who.role, customer=who.customer)


@router.get("/audit", response_model=list[AuditOut])
def audit_records(
    after: int = Query(0, ge=0, le=2_147_483_647),
    limit: int = Query(100, ge=1, le=1000),
    who: Principal = Depends(principal),
    svc: ApiServices = Depends(services),
) -> list[AuditOut]:
    return [AuditOut.model_validate(r) for r in svc.audit.records(after=after, limit=limit)]


@router.get("/audit/verify", response_model=AuditCheck)
def audit_check(
    who: Principal = Depends(principal), svc: ApiServices = Depends(services)
) -> AuditCheck:
    problems = svc.audit.verify()
    return AuditCheck(intact=not problems, problems=problems)


@router.get("/users", response_model=list[UserOut])
def users_list(
    who: Principal = Depends(principal), svc: ApiServices = Depends(services)
) -> list[UserOut]:
    return [UserOut(name=p.name, role=p.role, customer=p.customer) for p in svc.identities.all()]


@router.post("/users", response_model=UserCreated, status_code=201)
def user_create(
    body: UserIn, who: Principal = Depends(principal), svc: ApiServices = Depends(services)
) -> UserCreated:
    """A user or API client, with a generated password or secret shown this once."""
    customers = {c.id for c in svc.site.customers}
    if body.customer is not None and body.customer not in customers:
        raise HTTPException(422, f"unknown customer {body.customer!r}")
    now = svc.clock.now()
    try:
        secret = svc.identities.create(
            body.name,
            body.role,
            customer=body.customer,
            kind="client" if body.kind == "client" else "user",
            now=now,
        )
    except ValueError as err:
        raise HTTPException(422, str(err)) from err
    svc.audit.append(
        ts=now,
        actor=who.name,
        action="config",
        target=f"{body.kind}/{body.name}",
        detail={"role": body.role, "customer": body.customer},
    )
    return UserCreated(name=body.name, role=body.role, customer=body.customer, secret=secret)
