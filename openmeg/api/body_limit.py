"""A ceiling on request bodies, enforced before anything reads them (plain ASGI, outermost but
for the metrics): a ``Content-Length`` above it is refused with 413 at once, unread; a body
without one (chunked) is counted as it streams and refused as soon as it passes the ceiling.
No more than one chunk past the ceiling is ever held, and no route, login included, sees it."""

from __future__ import annotations

import json
from collections.abc import Callable

from starlette.types import ASGIApp, Message, Receive, Scope, Send

MAX_BODY = 1 << 20
"""1 MiB: the largest body of any route (a user, a trading setting, an edit) is under 10 kB."""


class BodyTooLarge(Exception):
    """Raised into the app once its request body has passed the ceiling."""


class BodyLimit:
    """``limit()`` gives the ceiling in bytes (read at each request: a setting may change)."""

    def __init__(self, app: ASGIApp, limit: Callable[[], int] = lambda: MAX_BODY) -> None:
        self.app, self.limit = app, limit

    async def _refuse(self, send: Send, limit: int) -> None:
        body = json.dumps(
            {"detail": f"the request body is larger than {limit} bytes: send less"}
        ).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                    (b"connection", b"close"),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.limit()
        for name, value in scope["headers"]:
            if name == b"content-length" and (not value.isdigit() or int(value) > limit):
                await self._refuse(send, limit)
                return
        state = {"received": 0, "refused": False, "started": False}

        async def counted(message: Message) -> None:
            if message["type"] == "http.response.start":
                state["started"] = True
            if not state["refused"]:
                await send(message)

        async def limited() -> Message:
            message = await receive()
            if message["type"] == "http.request":
                state["received"] += len(message.get("body", b""))
                if state["received"] > limit:
                    if not state["started"]:
                        await self._refuse(send, limit)
                    state["refused"] = True
                    raise BodyTooLarge(f"more than {limit} bytes")
            return message

        try:
            await self.app(scope, limited, counted)
        except BodyTooLarge:
            pass
        except Exception:
            if not state["refused"]:
                raise
