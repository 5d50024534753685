"""Authentication and authorisation for every route: a bearer token, then the role matrix."""

from __future__ import annotations

from fastapi import Depends, HTTPException, Request
from fastapi.security import OAuth2PasswordBearer

from openmeg.api.context import ApiServices, Scope, scope_for
from openmeg.api.roles import ROLE_MATRIX
from openmeg.api.schemas import Problem
from openmeg.core.identity import AuthError, Principal

TOKEN_URL = "/api/v1/auth/token"
COMMAND_ROUTES = frozenset(
    {"send_command", "command_authorise", "device_add_authorise", "bas_command"}
)
"""Routes of commands: a caller refused by role is audited too."""
bearer = OAuth2PasswordBearer(tokenUrl=TOKEN_URL, auto_error=False)


async def services(request: Request) -> ApiServices:
    svc: ApiServices = request.app.state.services
    return svc


async def principal(
    request: Request,
    token: str | None = Depends(bearer),
    svc: ApiServices = Depends(services),
) -> Principal:
    """Who calls, if their token is good and their role may use this route."""
    if not token:
        raise HTTPException(
            401, "log in first: POST /api/v1/auth/token", {"WWW-Authenticate": "Bearer"}
        )
    try:
        who = svc.tokens.verify(token, now=svc.wall.now())
    except AuthError as err:
        raise HTTPException(401, str(err), {"WWW-Authenticate": "Bearer"}) from err
    endpoint = request.scope.get("endpoint")
    allowed = ROLE_MATRIX.get(getattr(endpoint, "__name__", ""), frozenset())
    if who.role not in allowed:
        if getattr(endpoint, "__name__", "") in COMMAND_ROUTES:
            svc.audit.append(
                ts=svc.clock.now(),
                actor=who.name,
                action="command_refused",
                target=request.url.path[:256],
                detail={"reason": f"the role {who.role} may not command", "via": "api"},
            )
        raise HTTPException(403, f"the role {who.role} may not do this")
    return who


def scope(who: Principal = Depends(principal), svc: ApiServices = Depends(services)) -> Scope:
    return scope_for(svc, who)


ERRORS: dict[int | str, dict[str, object]] = {
    401: {"model": Problem, "description": "not logged in, or the token expired"},
    403: {"model": Problem, "description": "the role may not, or the data is another's"},
    404: {"model": Problem, "description": "no such thing"},
    409: {"model": Problem, "description": "not ready: the data it needs is missing"},
    422: {"model": Problem, "description": "refused: the request is invalid, nothing changed"},
}
