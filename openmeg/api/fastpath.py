"""The hot path: ``GET /api/v1/live`` answered straight from the encoded snapshot, before the
framework's routing and dependency machinery. The same token check, role matrix and scope
apply; anything out of the ordinary (no token, a bad one, a refused role) falls through to the
full application, which answers it as documented."""

from __future__ import annotations

from collections.abc import Callable

from starlette.types import ASGIApp, Receive, Scope, Send

from openmeg.api.context import ApiServices, scope_for
from openmeg.api.roles import ROLE_MATRIX
from openmeg.core.identity import AuthError

LIVE = "/api/v1/live"


class LiveFastPath:
    def __init__(self, app: ASGIApp, services: ApiServices, snapshot: Callable[..., bytes]) -> None:
        self.app, self.svc, self.snapshot = app, services, snapshot
        self.allowed = ROLE_MATRIX

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"] == LIVE and scope["method"] == "GET":
            body = self._body(scope)
            if body is not None:
                scope["openmeg.route"] = LIVE  # for the request metrics
                await send(
                    {
                        "type": "http.response.start",
                        "status": 200,
                        "headers": [
                            (b"content-type", b"application/json"),
                            (b"content-length", str(len(body)).encode()),
                        ],
                    }
                )
                await send({"type": "http.response.body", "body": body})
                return
        await self.app(scope, receive, send)

    def _body(self, scope: Scope) -> bytes | None:
        token = None
        for name, value in scope["headers"]:
            if name == b"authorization" and value[:7].lower() == b"bearer ":
                token = value[7:].decode("latin-1")
        if not token:
            return None
        try:
            who = self.svc.tokens.verify(token, now=self.svc.wall.now())
        except AuthError:
            return None
        if who.role not in self.allowed.get("live_snapshot", frozenset()):
            return None
        return self.snapshot(self.svc, scope_for(self.svc, who))
