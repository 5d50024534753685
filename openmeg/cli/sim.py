"""``openmeg sim serve``: the simulated field as its own program, on the wire."""

from __future__ import annotations

from pathlib import Path

import typer

from openmeg.cli.common import EXIT_BAD_INPUT, err_console, load_simulated_site_or_exit
from openmeg.core.errors import OpenMegError

sim_app = typer.Typer(
    help="The simulated field: a MEG's equipment on the wire.", no_args_is_help=True
)


@sim_app.command("serve")
def serve(
    site: str = typer.Option("demo", help="site file, or a shipped site name"),
    speed: float = typer.Option(1.0, min=0.001, help="times faster than real time"),
    start: str = typer.Option("", help="the field's first instant, ISO 8601 (default: now)"),
    anchor: float = typer.Option(
        0.0, help="the wall-clock instant (epoch s) at which it is --start (default: at start)"
    ),
    step: float = typer.Option(1.0, min=0.1, max=60.0, help="physics step, seconds"),
    base_port: int = typer.Option(
        15020,
        min=0,
        max=65000,
        help="first Modbus TCP port of the devices without an address in the site file "
        "(0: free ports on 127.0.0.1 for every device)",
    ),
    control_port: int = typer.Option(
        15019, min=0, max=65535, help="the control interface's HTTP port (0: a free one)"
    ),
    state: Path | None = typer.Option(None, help="keep the field's state in this file"),
    scenario: str = typer.Option(
        "",
        help="scenario file played in place of the site file's scenario section (weather, "
        "outages, simulation settings, device physics)",
    ),
) -> None:
    """Serve every device of the site as a SunSpec Modbus TCP slave (at its address in the site
    file, or laid out from --base-port), with its physics, on the field's own clock; a control
    interface on 127.0.0.1 plays scenarios (utility outage and return, a device that stops
    answering, a fault on a line and its repair). Prints one JSON line with the control
    interface's address and every device's address; Ctrl-C stops it and saves its state."""
    import asyncio
    from datetime import UTC, datetime

    the_site = load_simulated_site_or_exit(site, scenario or None)
    try:
        first = datetime.fromisoformat(start.replace("Z", "+00:00")) if start else None
    except ValueError as err:
        err_console.print(f"error: --start {start!r}: {err}", markup=False)
        raise typer.Exit(EXIT_BAD_INPUT) from err
    if first is not None and first.tzinfo is None:
        first = first.replace(tzinfo=UTC)
    try:
        asyncio.run(
            _serve(the_site, speed, first, anchor or None, step, base_port, control_port, state)
        )
    except OpenMegError as err:
        err_console.print(f"error: {err}", markup=False)
        raise typer.Exit(1) from err


async def _serve(
    site: object,
    speed: float,
    first: object,
    anchor: float | None,
    step: float,
    base_port: int,
    control_port: int,
    state: Path | None,
) -> None:
    import asyncio
    import json
    from datetime import UTC, datetime

    from openmeg.cli.run import stop_on_signals
    from openmeg.core.clock import SimClock
    from openmeg.core.site import Site
    from openmeg.protocols.http_server import HttpServer
    from openmeg.sim.control import control_app
    from openmeg.sim.field import Field

    assert isinstance(site, Site)
    start = first if isinstance(first, datetime) else datetime.now(UTC).replace(microsecond=0)
    clock = SimClock(start, speed=speed, anchor_epoch_s=anchor)
    field = Field(site, clock=clock, step_s=step, base_port=base_port, state_file=state)
    try:
        plan = await field.start()
    except (OSError, RuntimeError) as err:
        await field.stop()
        raise OpenMegError(
            f"cannot serve the devices (at the site file's addresses, the others from port "
            f"{base_port}): {err}; correct the addresses, or choose another --base-port "
            "(0: free ports for every device; openmeg run: --modbus-port)"
        ) from err
    control = HttpServer(
        control_app(field),
        host="127.0.0.1",
        port=control_port,
        name="the field's control interface",
        hint="choose another with --control-port (0: a free one)",
    )
    try:
        await control.start()
    except OpenMegError:
        await field.stop()
        raise
    bas = [w.as_dict() for w in field.bas_plan]
    print(
        json.dumps({"control": control.url, "devices": [w.as_dict() for w in plan], "bas": bas}),
        flush=True,
    )
    stop = stop_on_signals()
    try:
        await field.run(stop)
    finally:
        await control.stop()
        await field.stop()
    err_console.print("field stopped cleanly")
    await asyncio.sleep(0)
