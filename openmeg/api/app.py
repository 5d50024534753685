"""The API application: REST routes per domain, the WebSocket stream, metrics, the dashboard."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from pathlib import Path

from fastapi import FastAPI, Request, Response, WebSocket
from fastapi.responses import FileResponse
from fastapi.staticfiles import StaticFiles
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from openmeg.api import routes_admin, routes_customer, routes_operation
from openmeg.api.context import ApiServices, scope_of
from openmeg.api.metrics import ApiMetrics
from openmeg.api.stream import StreamClient, StreamHub
from openmeg.core.identity import AuthError

WEB = Path(__file__).resolve().parent.parent / "web"


def create_app(svc: ApiServices, hub: StreamHub) -> FastAPI:
    app = FastAPI(
        title="openmeg API",
        version="1",
        description=(
            "The micro energy grid's open interface (ITU-T Y.2071 R1, R6): site, devices, live "
            "values and history, commands, alarms and events, meters and readings, bills and "
            "basic charges, prices, trading, revenue, the local market, users and the audit "
            "log. Log in at /api/v1/auth/token; send the token as a bearer token."
        ),
    )
    app.state.services = svc
    metrics = ApiMetrics(lambda: {**svc.figures(), "stream_clients": float(len(hub.clients))})
    app.include_router(routes_admin.public)
    app.include_router(routes_admin.router)
    app.include_router(routes_operation.router)
    app.include_router(routes_customer.router)

    @app.middleware("http")
    async def count(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        t0 = time.perf_counter()
        response = await call_next(request)
        route = request.scope.get("route")
        path = getattr(route, "path", "unmatched")
        metrics.requests.labels(request.method, path, str(response.status_code)).inc()
        metrics.latency.labels(path).observe(time.perf_counter() - t0)
        if response.status_code >= 500:
            metrics.errors.inc()
        return response

    @app.get("/health", tags=["public"])
    def health() -> dict[str, str]:
        return {"status": "ok", "site": svc.site.site.id}

    @app.get("/metrics", tags=["public"], response_class=Response)
    def prometheus() -> Response:
        return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)

    @app.websocket("/api/v1/stream")
    async def stream(socket: WebSocket, token: str = "") -> None:
        try:
            who = svc.tokens.verify(token, now=svc.wall.now())
        except AuthError as err:  # accepted to say why: a browser sees close codes only
            await socket.accept()
            await socket.close(code=4401, reason=str(err)[:120])
            return
        await socket.accept()
        await hub.serve(StreamClient(socket=socket, scope=scope_of(svc.site, who)))

    app.mount("/static", StaticFiles(directory=WEB), name="static")

    @app.get("/", include_in_schema=False)
    def dashboard() -> FileResponse:
        return FileResponse(WEB / "index.html")

    return app
