"""Requests the API refuses before a route runs: a 422 that names what is wrong where, never
echoing the input (it may be NaN, which JSON cannot carry, or megabytes long); a refused command
is audited, its actor the verified token's (the route never saw it)."""

from __future__ import annotations

from typing import Any

from fastapi import Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from openmeg.api.context import ApiServices
from openmeg.core.identity import AuthError

COMMANDS = "/api/v1/commands"


def _audit_command(svc: ApiServices, request: Request, body: Any, reason: str) -> None:
    header = request.headers.get("authorization", "")
    if header[:7].lower() != "bearer ":
        return
    try:
        who = svc.tokens.verify(header[7:], now=svc.wall.now())
    except AuthError:
        return
    fields = body if isinstance(body, dict) else {}
    device, name = (str(fields.get(k, "?"))[:64] for k in ("device", "name"))
    svc.audit.append(
        ts=svc.clock.now(),
        actor=who.name,
        action="command",
        target=f"{device}/{name}",
        detail={"value": None, "accepted": False, "reason": f"refused by the API: {reason}"},
    )


async def invalid_request(request: Request, exc: Exception) -> JSONResponse:
    errors = exc.errors() if isinstance(exc, RequestValidationError) else []
    detail = [
        {"loc": list(e.get("loc", ())), "msg": e.get("msg", ""), "type": e.get("type", "")}
        for e in errors
    ]
    if request.url.path == COMMANDS and request.method == "POST":
        svc: ApiServices = request.app.state.services
        reason = "; ".join(f"{'.'.join(map(str, d['loc']))}: {d['msg']}" for d in detail)
        body = exc.body if isinstance(exc, RequestValidationError) else None
        _audit_command(svc, request, body, reason[:500])
    return JSONResponse({"detail": detail}, status_code=422)
