"""Logging in (OAuth2 password and client-credentials flows), who am I, users, the audit log."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Form, HTTPException, Query, Request, Response
from fastapi.responses import JSONResponse

from openmeg.api.auth import ERRORS, TOKEN_URL, principal, services
from openmeg.api.client_address import client_address
from openmeg.api.context import ApiServices
from openmeg.api.schemas import (
    AuditCheck,
    AuditOut,
    LogoutOut,
    Me,
    OAuthProblem,
    Problem,
    TokenOut,
    UserCreated,
    UserIn,
    UserOut,
)
from openmeg.core.identity import AuthError, Principal
from openmeg.core.sessions import RefreshRefused, RefreshReused

public = APIRouter(tags=["auth"])
router = APIRouter(prefix="/api/v1", responses=ERRORS)


NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}
"""Tokens are never cached (RFC 6749 §5.1)."""
LOGOUT_URL = "/api/v1/auth/logout"


def _refused(
    status: int, error: str, why: str, headers: dict[str, str] | None = None
) -> JSONResponse:
    """An OAuth2 error answer (RFC 6749 §5.2), with ``detail`` as every refusal here has."""
    body = {"error": error, "error_description": why, "detail": why}
    return JSONResponse(body, status_code=status, headers={**NO_STORE, **(headers or {})})


@public.post(
    TOKEN_URL,
    response_model=TokenOut,
    response_model_exclude_none=True,
    responses={
        400: {
            "model": OAuthProblem,
            "description": "a refresh token that is bad, spent or expired",
        },
        401: {"model": Problem, "description": "wrong credentials"},
        422: {"model": Problem, "description": "a grant without its name or secret"},
        429: {"model": Problem, "description": "too many failed logins: wait"},
    },
)
def token(
    request: Request,
    response: Response,
    grant_type: Annotated[str, Form(pattern="^(password|client_credentials|refresh_token)$")],
    username: Annotated[str, Form(max_length=128)] = "",
    password: Annotated[str, Form(max_length=1024)] = "",
    client_id: Annotated[str, Form(max_length=128)] = "",
    client_secret: Annotated[str, Form(max_length=1024)] = "",
    refresh_token: Annotated[str, Form(max_length=4096)] = "",
    svc: ApiServices = Depends(services),
) -> TokenOut | JSONResponse:
    """A token for a user (``password``) or an API client (``client_credentials``); a user
    also gets a refresh token, which ``refresh_token`` exchanges for new tokens (rotation: the
    old one is then spent, and spending it again ends the session)."""
    response.headers.update(NO_STORE)
    if grant_type == "refresh_token":
        return _refreshed(request, refresh_token, svc)
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
    wall = svc.wall.now()
    if kind != "user":  # a client logs in again with its secret (RFC 6749 §4.4.3)
        return TokenOut(access_token=svc.tokens.issue(who, wall), expires_in=int(svc.tokens.ttl_s))
    session = svc.sessions.start(who.name, wall)
    return _tokens(svc, who, session.refresh_token, session.expires_at, wall)


def _tokens(
    svc: ApiServices, who: Principal, refresh: str, refresh_expires: datetime, now: datetime
) -> TokenOut:
    return TokenOut(
        access_token=svc.tokens.issue(who, now),
        expires_in=int(svc.tokens.ttl_s),
        refresh_token=refresh,
        refresh_expires_in=int((refresh_expires - now).total_seconds()),
    )


def _refreshed(request: Request, token: str, svc: ApiServices) -> TokenOut | JSONResponse:
    """The refresh grant. Failures count against the caller's address in the login limiter
    (as a name of their own, so that nobody slows everybody's refreshes): a guesser is
    refused after a few, an owner's display is never slowed by another's."""
    if not token:
        return _refused(400, "invalid_request", "the refresh_token grant needs refresh_token")
    address = client_address(request.scope, svc.trusted_proxies)
    slot = f"refresh from {address}"
    wait = svc.limiter.retry_after(slot, address)
    if wait > 0:
        return _refused(
            429,
            "invalid_request",
            f"too many failed refreshes from {address}: wait {int(wait) + 1} s and try again",
            {"Retry-After": str(int(wait) + 1)},
        )
    now = svc.wall.now()
    try:
        rotated = svc.sessions.rotate(token, now)
    except RefreshReused as err:
        svc.limiter.failed(slot, address)
        svc.audit.append(
            ts=svc.clock.now(),
            actor=err.principal,
            action="refresh_reused",
            target="session",
            detail={"from": address, "session": err.family, "revoked": True},
        )
        return _refused(400, "invalid_grant", str(err))
    except RefreshRefused as err:
        svc.limiter.failed(slot, address)
        return _refused(400, "invalid_grant", str(err))
    who = svc.identities.get(rotated.principal)
    if who is None:
        svc.sessions.end_all(rotated.principal, now, "user removed")
        return _refused(400, "invalid_grant", f"there is no user {rotated.principal!r} any more")
    svc.limiter.succeeded(slot, address)
    return _tokens(svc, who, rotated.refresh_token, rotated.expires_at, now)


@public.post(
    LOGOUT_URL,
    response_model=LogoutOut,
    responses={400: {"model": OAuthProblem, "description": "no refresh token given"}},
)
def logout(
    request: Request,
    refresh_token: Annotated[str, Form(max_length=4096)] = "",
    svc: ApiServices = Depends(services),
) -> LogoutOut | JSONResponse:
    """End the session of a refresh token: it and every token of its session stop working
    (an access token already issued lasts its few minutes). Whoever holds the refresh token
    may end its session; any other token is answered alike (RFC 7009 §2.2)."""
    if not refresh_token:
        return _refused(400, "invalid_request", "logout needs the session's refresh_token")
    whose = svc.sessions.end(refresh_token, svc.wall.now())
    if whose is not None:
        address = client_address(request.scope, svc.trusted_proxies)
        svc.audit.append(
            ts=svc.clock.now(),
            actor=whose,
            action="logout",
            target="session",
            detail={"from": address},
        )
    return LogoutOut(ended=whose is not None)


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
