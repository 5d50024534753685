"""``openmeg devices``: the devices on the wire (SunSpec Modbus)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import typer
from rich.console import Console

from openmeg.cli.broker import KEYSTORE, MQTT_CA, component_login
from openmeg.cli.common import EXIT_BAD_INPUT, err_console, load_site_or_exit
from openmeg.core.errors import OpenMegError

if TYPE_CHECKING:
    from openmeg.core.messages import DeviceAdded
    from openmeg.protocols.broker_access import Login

devices_app = typer.Typer(help="Devices on the wire (SunSpec Modbus).")


@devices_app.callback(invoke_without_command=True)
def devices(
    ctx: typer.Context,
    site: str = typer.Option("demo", help="site file, or a shipped site name"),
    base_port: int = typer.Option(
        15020, min=1, max=65000, help="first Modbus TCP port of devices without an address"
    ),
    as_json: bool = typer.Option(False, "--json", help="print JSON instead of a table"),
) -> None:
    """List the devices on the wire as the simulated field serves them: id, kind, host, port,
    unit id and SunSpec models (at the site file's addresses, the others from --base-port)."""
    if ctx.invoked_subcommand is not None:
        return
    import json

    from rich.table import Table

    from openmeg.sim.wire import wire_plan

    plan = wire_plan(load_site_or_exit(site), base_port=base_port)
    if as_json:
        print(json.dumps([w.as_dict() for w in plan], indent=2))
        return
    table = Table("device", "kind", "host", "port", "unit", "SunSpec models")
    for w in plan:
        table.add_row(w.id, w.kind, w.host, str(w.port), str(w.unit), " ".join(map(str, w.models)))
    Console().print(table)


@devices_app.command("add")
def devices_add(
    address: str = typer.Argument(..., help="HOST:PORT:UNIT of the new device"),
    site: str = typer.Option("demo", help="the site id of the running MEG"),
    mqtt: str = typer.Option("127.0.0.1:1883", help="the MQTT broker the running MEG uses"),
    timeout_s: float = typer.Option(10.0, help="how long to wait for the MEG's answer"),
    mqtt_ca: Path | None = MQTT_CA,
    keystore: Path | None = KEYSTORE,
) -> None:
    """Connect a running MEG (``openmeg run --mqtt ...``) to a device by its address only."""
    import asyncio

    from openmeg.core.messages import parse_device_address

    try:
        parse_device_address(address)
    except ValueError as err:
        err_console.print(f"error: {err}", markup=False)
        raise typer.Exit(EXIT_BAD_INPUT) from err
    try:
        login = component_login(mqtt, site, "operator", mqtt_ca, keystore)
        reply = asyncio.run(_ask_device_add(site, address, login, timeout_s))
    except (OpenMegError, TimeoutError) as err:
        err_console.print(f"error: no answer from a running MEG {site!r} via {mqtt}: {err}")
        raise typer.Exit(1) from err
    if not reply.ok:
        err_console.print(f"error: {address}: {reply.reason}", markup=False)
        raise typer.Exit(1)
    print(
        f"{address}: added {reply.device} (SunSpec models {', '.join(map(str, reply.models))}; "
        f"points {', '.join(reply.points)})"
    )


async def _ask_device_add(
    site: str, address: str, login: tuple[str, int, Login], timeout_s: float
) -> DeviceAdded:
    from datetime import UTC, datetime

    from openmeg.distribution.device_add import request_device_add
    from openmeg.protocols.mqtt import MqttBus

    host, port, who = login
    bus = await MqttBus(host, port, login=who).connect()
    try:
        return await request_device_add(
            bus, site, address, now=datetime.now(UTC), timeout_s=timeout_s
        )
    finally:
        await bus.close()
