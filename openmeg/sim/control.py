"""The simulated field's control interface: HTTP with JSON on 127.0.0.1, for the scenarios a
study or a test plays (the utility goes and comes back, a device stops answering), and to see
what the devices received. It is the field's, not the platform's: real equipment has none."""

from __future__ import annotations

import math

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from openmeg.core.errors import CommandError
from openmeg.sim.field import Field


def control_app(field: Field) -> Starlette:
    """``GET /field``: time, mode and devices (with the writes each accepted);
    ``GET /field/image``: every value the plant has now;
    ``POST /field/utility`` ``{"available": false}``: the utility grid goes (or comes back);
    ``POST /field/devices/{id}/silence`` and ``.../answer``: a device stops answering, or answers
    again;
    ``GET /field/devices/{id}/writes``: the commands its last writes carried, with the
    wall-clock time each arrived (epoch s);
    ``POST /field/loads/{id}/step`` ``{"kw": 1.5}``: a load draws that much more from the next
    step; ``GET /field/loads``: the wall-clock time each load's last step reached the meters."""

    async def status(request: Request) -> JSONResponse:
        return JSONResponse(field.status())

    async def image(request: Request) -> JSONResponse:
        values = field.plant.read()
        return JSONResponse(
            {
                "time": field.plant.time.isoformat(),
                "values": {k: _finite(v) for k, v in values.items()},
            }
        )

    async def utility(request: Request) -> JSONResponse:
        try:
            body = await request.json()
        except ValueError:
            return _refused('a JSON body {"available": true|false} is needed')
        available = body.get("available") if isinstance(body, dict) else None
        if not isinstance(available, bool):
            return _refused('"available" must be true or false')
        field.plant.command("pcc/utility_available", 1.0 if available else 0.0)
        return JSONResponse({"utility_available": available})

    async def silence(request: Request) -> JSONResponse:
        try:
            await field.servers.silence(request.path_params["device"])
        except CommandError as err:
            return _refused(str(err), status=404)
        return JSONResponse({"device": request.path_params["device"], "silent": True})

    async def answer(request: Request) -> JSONResponse:
        try:
            await field.servers.answer(request.path_params["device"])
        except CommandError as err:
            return _refused(str(err), status=404)
        return JSONResponse({"device": request.path_params["device"], "silent": False})

    async def writes(request: Request) -> JSONResponse:
        dev = field.servers.devices.get(request.path_params["device"])
        if dev is None:
            return _refused(f"no device {request.path_params['device']!r}", status=404)
        return JSONResponse(
            [{"at": at, "commands": [[p, _finite(v)] for p, v in cmds]} for at, cmds in dev.log]
        )

    async def load_step(request: Request) -> JSONResponse:
        try:
            body = await request.json()
        except ValueError:
            return _refused('a JSON body {"kw": <number>} is needed')
        kw = body.get("kw") if isinstance(body, dict) else None
        if not isinstance(kw, int | float) or isinstance(kw, bool) or not math.isfinite(kw):
            return _refused('"kw" must be a finite number')
        if abs(kw) > 1000:
            return _refused('"kw" is at most 1000 kW either way')
        try:
            field.step_load(request.path_params["load"], float(kw))
        except KeyError as err:
            return _refused(str(err.args[0]), status=404)
        return JSONResponse({"load": request.path_params["load"], "kw": kw})

    async def loads(request: Request) -> JSONResponse:
        return JSONResponse(field.load_steps)

    return Starlette(
        routes=[
            Route("/field/devices/{device}/writes", writes),
            Route("/field/loads", loads),
            Route("/field/loads/{load}/step", load_step, methods=["POST"]),
            Route("/field", status),
            Route("/field/image", image),
            Route("/field/utility", utility, methods=["POST"]),
            Route("/field/devices/{device}/silence", silence, methods=["POST"]),
            Route("/field/devices/{device}/answer", answer, methods=["POST"]),
        ]
    )


def _finite(value: float) -> float | None:
    return value if math.isfinite(value) else None


def _refused(text: str, *, status: int = 422) -> JSONResponse:
    return JSONResponse({"detail": text}, status_code=status)
