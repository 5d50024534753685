"""The API application: REST routes per domain, the WebSocket stream, metrics, the dashboard."""

from __future__ import annotations

import time
from pathlib import Path

import jwt
from fastapi import FastAPI, Response, WebSocket
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse
from fastapi.staticfiles import StaticFiles
from fastapi_offline import FastAPIOffline
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from openmeg.api import (
    routes_admin,
    routes_authorisations,
    routes_bas,
    routes_customer,
    routes_operation,
    routes_services,
    routes_views,
)
from openmeg.api.body_limit import BodyLimit
from openmeg.api.context import ApiServices, scope_for
from openmeg.api.fastpath import LiveFastPath
from openmeg.api.metrics import ApiMetrics
from openmeg.api.refusals import invalid_request
from openmeg.api.routes_energy import router as energy_routes
from openmeg.api.routes_network import router as network_router
from openmeg.api.routes_prosumer import router as prosumer_routes
from openmeg.api.stream import StreamClient, StreamHub
from openmeg.core.identity import AuthError

WEB = Path(__file__).resolve().parent.parent / "web"


class RequestMetrics:
    """Counts requests by route and status, and times them (plain ASGI: cheap)."""

    def __init__(self, app: ASGIApp, metrics: ApiMetrics) -> None:
        self.app, self.metrics = app, metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        t0 = time.perf_counter()
        status = [500]

        async def sending(message: Message) -> None:
            if message["type"] == "http.response.start":
                status[0] = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, sending)
        finally:
            path = scope.get("openmeg.route") or getattr(scope.get("route"), "path", "unmatched")
            m = self.metrics
            m.requests.labels(scope["method"], path, str(status[0])).inc()
            m.latency.labels(path).observe(time.perf_counter() - t0)
            if status[0] >= 500:
                m.errors.inc()


def create_app(svc: ApiServices, hub: StreamHub) -> FastAPI:
    # /docs (Swagger UI) and /redoc with their scripts served from the package: they work on
    # a site without internet (no CDN), and ask nothing of any other host
    app = FastAPIOffline(
        static_url="/static/docs",
        swagger_ui_parameters={"validatorUrl": None},
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
    app.add_exception_handler(RequestValidationError, invalid_request)
    metrics = ApiMetrics(lambda: {**svc.figures(), "stream_clients": float(len(hub.clients))})
    app.include_router(routes_admin.public)
    app.include_router(routes_admin.router)
    app.include_router(routes_operation.router)
    app.include_router(routes_authorisations.router)
    app.include_router(routes_customer.router)
    app.include_router(prosumer_routes)
    app.include_router(network_router)
    app.include_router(energy_routes)
    app.include_router(routes_views.router)
    app.include_router(routes_services.router)
    app.state.provisioning = {}  # by customer: routes_services.attach gives them
    app.include_router(routes_bas.router)

    app.add_middleware(LiveFastPath, services=svc, snapshot=routes_operation.live_body)
    app.add_middleware(BodyLimit, limit=lambda: svc.max_body_bytes)  # before any body is read
    app.add_middleware(RequestMetrics, metrics=metrics)

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
        # verified above: its expiry is read without checking the signature a second time
        exp = float(jwt.decode(token, options={"verify_signature": False})["exp"])
        await socket.accept()
        client = StreamClient(socket=socket, scope=scope_for(svc, who))
        # the token's own expiry, an instant on the API's clock: a wait begun late, or a clock
        # corrected meanwhile, cannot let the stream outlive its token
        await hub.serve(client, expires_at=exp, wall=svc.wall)

    app.mount("/static", StaticFiles(directory=WEB), name="static")

    @app.get("/", include_in_schema=False)
    def dashboard() -> FileResponse:
        return FileResponse(WEB / "index.html")

    return app
