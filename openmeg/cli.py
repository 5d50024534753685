"""The ``openmeg`` command."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer
from rich.console import Console

from openmeg.cli_common import EXIT_BAD_INPUT, err_console
from openmeg.cli_common import load_site_or_exit as _load_site_or_exit
from openmeg.cli_common import open_store as _open_store
from openmeg.cli_common import utc as _utc
from openmeg.core.errors import OpenMegError
from openmeg.economics_cli import market_app, revenue_cmd, trade_app
from openmeg.run_cli import run
from openmeg.security_cli import audit_app, certs_app, users_app

if TYPE_CHECKING:
    from openmeg.core.messages import DeviceAdded

app = typer.Typer(
    help="openmeg: run and study a micro energy grid (ITU-T Y.2071).", no_args_is_help=True
)
site_app = typer.Typer(help="Site files: the description of one MEG.", no_args_is_help=True)
app.add_typer(site_app, name="site")
app.command()(run)
app.add_typer(trade_app, name="trade")
app.add_typer(market_app, name="market")
app.add_typer(audit_app, name="audit")
app.add_typer(certs_app, name="certs")
app.add_typer(users_app, name="users")
app.command("revenue")(revenue_cmd)


@site_app.command("check")
def site_check(file: str = typer.Argument(..., help="site file, or a shipped site name")) -> None:
    """Validate a site file: exit 0, or 2 with one line per problem."""
    site = _load_site_or_exit(file)
    print(
        f"{file}: ok: site {site.site.id!r}, {len(site.devices)} devices, "
        f"{len(site.meters)} meters, {len(site.customers)} customers"
    )


@app.command()
def simulate(
    site: str = typer.Option("demo", help="site file, or a shipped site name"),
    days: float = typer.Option(365.0, min=0.0, help="how many days to simulate"),
    step: str = typer.Option("1min", help="step length: 15s, 1min, 15min, 1h, ..."),
    start: str = typer.Option(
        "2026-01-01T00:00:00Z", help="first instant (ISO 8601, UTC if no zone)"
    ),
    out: Path = typer.Option(Path("out/simulation"), help="folder for summary, Parquet and report"),
) -> None:
    """Run the whole MEG in simulated time; write summary.json, timeseries.parquet, report.html."""
    from datetime import UTC, datetime

    from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

    from openmeg.sim.report import write_results
    from openmeg.sim.scenario import parse_step_s
    from openmeg.sim.scenario import simulate as run_simulation
    from openmeg.sim.summary import summarize

    the_site = _load_site_or_exit(site)
    try:
        step_s = parse_step_s(step)
        first = datetime.fromisoformat(start.replace("Z", "+00:00"))
        first = first if first.tzinfo else first.replace(tzinfo=UTC)
    except ValueError as err:
        err_console.print(f"error: {err}", markup=False)
        raise typer.Exit(EXIT_BAD_INPUT) from err
    columns = (
        TextColumn("simulating"),
        BarColumn(),
        TextColumn("{task.percentage:>5.1f}%"),
        TimeRemainingColumn(),
    )
    with Progress(*columns, console=err_console, transient=True) as bar:
        task = bar.add_task("sim", total=1.0)
        engine = run_simulation(
            the_site,
            start=first,
            days=days,
            step_s=step_s,
            progress=lambda k, n: bar.update(task, completed=k / n),
        )
    summary = summarize(engine)
    paths = write_results(engine, summary, out)
    print(
        f"simulated {summary['steps']} steps: load {summary['load_kwh']:.0f} kWh, "
        f"import {summary['import_kwh']:.0f} kWh, export {summary['export_kwh']:.0f} kWh, "
        f"self-sufficiency {summary['self_sufficiency']:.1%}, "
        f"islanded {summary['islanded_hours']:.1f} h, "
        f"balance error {summary['balance_error_kwh']:.2e} kWh"
    )
    for name, path in paths.items():
        print(f"{name}: {path}")


devices_app = typer.Typer(help="Devices on the wire (SunSpec Modbus).")
app.add_typer(devices_app, name="devices")


@devices_app.callback(invoke_without_command=True)
def devices(
    ctx: typer.Context,
    site: str = typer.Option("demo", help="site file, or a shipped site name"),
    base_port: int = typer.Option(15020, min=1, max=65000, help="first Modbus TCP port"),
    as_json: bool = typer.Option(False, "--json", help="print JSON instead of a table"),
) -> None:
    """List the devices on the wire: id, kind, host, port, unit id and SunSpec models."""
    if ctx.invoked_subcommand is not None:
        return
    import json

    from rich.table import Table

    from openmeg.sim.wire import wire_plan

    plan = wire_plan(_load_site_or_exit(site), base_port=base_port)
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
        reply = asyncio.run(_ask_device_add(site, address, mqtt, timeout_s))
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


async def _ask_device_add(site: str, address: str, mqtt: str, timeout_s: float) -> DeviceAdded:
    import asyncio
    from datetime import UTC, datetime

    from openmeg.core.messages import DeviceAdd, DeviceAdded, device_add_topic, device_added_topic
    from openmeg.protocols.mqtt import MqttBus

    host, _, port = mqtt.rpartition(":")
    bus = await MqttBus(host or "127.0.0.1", int(port)).connect()
    try:
        replies = await bus.subscribe(device_added_topic(site))
        await bus.publish(
            device_add_topic(site), DeviceAdd(site=site, address=address, ts=datetime.now(UTC))
        )
        async with asyncio.timeout(timeout_s):
            while True:
                _, msg = await replies.get()
                if isinstance(msg, DeviceAdded) and msg.address == address:
                    return msg
    finally:
        await bus.close()


meters_app = typer.Typer(help="Meter data: AMI ingest into the MDMS.", no_args_is_help=True)
app.add_typer(meters_app, name="meters")


@meters_app.command("ingest")
def meters_ingest(
    site: str = typer.Option("demo", help="site file, or a shipped site name"),
    mqtt: str = typer.Option("127.0.0.1:1883", help="MQTT broker host:port"),
    store: str = typer.Option("", help="store URL (default: SQLite file openmeg-<site>.db)"),
    session: str = typer.Option("", help="MQTT session name (default openmeg-mdms-<site>)"),
) -> None:
    """Take interval readings from the AMI over MQTT into the MDMS; each message is stored
    before it is acknowledged, so nothing acknowledged is lost if this process dies."""
    import signal

    from openmeg.core.messages import readings_topic
    from openmeg.operation.mdms.ingest import IngestService
    from openmeg.protocols.durable import DurableSubscriber

    the_site = _load_site_or_exit(site)
    site_id = the_site.site.id
    db = _open_store(store, site_id)
    host, _, port = mqtt.rpartition(":")
    try:
        sub = DurableSubscriber(
            host or "127.0.0.1",
            int(port),
            client_id=session or f"openmeg-mdms-{site_id}",
            topic=readings_topic(site_id, "+"),
        )
    except OpenMegError as err:
        err_console.print(f"error: {err}", markup=False)
        raise typer.Exit(1) from err
    stopping = []
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stopping.append(True))
    service = IngestService(site_id, sub, db, {m.id for m in the_site.meters})
    while not sub.connected:
        sub.poll(0.1)
    print("ready", flush=True)
    service.run(lambda: bool(stopping))
    sub.close()
    db.close()
    print(f"stopped: {service.stored} readings stored, {service.refused} messages refused")


@meters_app.command("import")
def meters_import(
    file: Path = typer.Argument(..., help="CSV, Parquet or Green Button XML"),
    site: str = typer.Option("demo", help="site file, or a shipped site name"),
    store: str = typer.Option("", help="store URL (default: SQLite file openmeg-<site>.db)"),
) -> None:
    """Import interval readings; a file with any bad row is refused whole (exit 2)."""
    from openmeg.operation.mdms.files import read_readings
    from openmeg.operation.mdms.store import IngestError, MeterReadings

    the_site = _load_site_or_exit(site)
    db = _open_store(store, the_site.site.id)
    try:
        frame = read_readings(file)
        report = MeterReadings(db).ingest(
            frame, meters={m.id for m in the_site.meters}, source=file.name
        )
    except IngestError as err:
        for problem in err.problems:
            err_console.print(f"error: {problem}", markup=False, soft_wrap=True)
        raise typer.Exit(EXIT_BAD_INPUT) from err
    finally:
        db.close()
    print(
        f"{file.name}: {report.new} new, {report.duplicates} already stored, "
        f"{len(report.conflicts)} conflicting (kept aside, not stored)"
    )


@meters_app.command("export")
def meters_export(
    out: Path = typer.Argument(..., help="file to write: .csv, .parquet or .xml (Green Button)"),
    meter: list[str] = typer.Option(..., help="meter id (repeat for several)"),
    start: str = typer.Option(..., help="first instant, ISO 8601"),
    end: str = typer.Option(..., help="end instant (excluded), ISO 8601"),
    site: str = typer.Option("demo", help="site file, or a shipped site name"),
    store: str = typer.Option("", help="store URL (default: SQLite file openmeg-<site>.db)"),
) -> None:
    """Export raw interval readings."""
    import pandas as pd

    from openmeg.operation.mdms.files import write_readings
    from openmeg.operation.mdms.store import CHANNELS, MeterReadings

    the_site = _load_site_or_exit(site)
    known = {m.id for m in the_site.meters}
    if unknown := [m for m in meter if m not in known]:
        err_console.print(f"error: unknown meter(s): {', '.join(unknown)}")
        raise typer.Exit(EXIT_BAD_INPUT)
    try:
        t0, t1 = _utc(start), _utc(end)
    except ValueError as err:
        err_console.print(f"error: {err}")
        raise typer.Exit(EXIT_BAD_INPUT) from err
    db = _open_store(store, the_site.site.id)
    readings = MeterReadings(db)
    frames = []
    for m in meter:
        for channel in CHANNELS:
            s = readings.series(m, channel, t0, t1)
            frames.append(
                pd.DataFrame(
                    {
                        "meter": m,
                        "channel": channel,
                        "interval_start": s.index,
                        "value_kwh": s.to_numpy(),
                    }
                )
            )
    db.close()
    frame = pd.concat(frames, ignore_index=True)
    try:
        write_readings(frame, out)
    except ValueError as err:
        err_console.print(f"error: {err}")
        raise typer.Exit(EXIT_BAD_INPUT) from err
    print(f"{out}: {len(frame)} readings")


vee_app = typer.Typer(
    help="Validation, estimation and editing of meter data.", no_args_is_help=True
)
app.add_typer(vee_app, name="vee")


@vee_app.command("run")
def vee_run(
    period: str = typer.Option(..., help="month to validate, YYYY-MM (local time)"),
    site: str = typer.Option("demo", help="site file, or a shipped site name"),
    store: str = typer.Option("", help="store URL (default: SQLite file openmeg-<site>.db)"),
) -> None:
    """Validate every meter channel of a month; estimate what must be; store new versions."""
    from openmeg.operation.mdms.store import CHANNELS
    from openmeg.operation.mdms.validated import ValidatedReadings
    from openmeg.operation.mdms.vee import VeeConfig
    from openmeg.provider.billing_run import month_bounds

    the_site = _load_site_or_exit(site)
    try:
        start, end = month_bounds(period, the_site.site.timezone)
    except ValueError as err:
        err_console.print(f"error: {err}")
        raise typer.Exit(EXIT_BAD_INPUT) from err
    db = _open_store(store, the_site.site.id)
    v = ValidatedReadings(db, the_site.site.id)
    cfg = VeeConfig(timezone=the_site.site.timezone, **the_site.vee.model_dump())
    for m in the_site.meters:
        for channel in CHANNELS:
            try:
                r = v.run_vee(
                    m.id,
                    channel,
                    start.to_pydatetime(),
                    end.to_pydatetime(),
                    cfg,
                    active=channel == "import",
                )
            except ValueError as err:
                err_console.print(f"{m.id} {channel}: cannot estimate: {err}", markup=False)
                continue
            rules = ", ".join(f"{k} {n}" for k, n in r.flags.rule.value_counts().items())
            print(
                f"{m.id} {channel}: {r.new_versions} new versions, {r.estimated} estimated"
                + (f"; flags: {rules}" if rules else "")
            )
    db.close()


@app.command("bill")
def bill_cmd(
    period: str = typer.Option(..., help="month to bill, YYYY-MM (local time)"),
    site: str = typer.Option("demo", help="site file, or a shipped site name"),
    store: str = typer.Option("", help="store URL (default: SQLite file openmeg-<site>.db)"),
    out: Path = typer.Option(Path("out/bills"), help="folder for the HTML and PDF bills"),
    customer: list[str] = typer.Option([], help="bill only these customers"),
) -> None:
    """Bill each customer for a month from validated readings; a bill in HTML and PDF each."""
    from openmeg.provider.billing_run import run_billing

    the_site = _load_site_or_exit(site)
    db = _open_store(store, the_site.site.id)
    try:
        outcomes = run_billing(the_site, db, period, out, set(customer) or None)
    except ValueError as err:
        err_console.print(f"error: {err}")
        raise typer.Exit(EXIT_BAD_INPUT) from err
    finally:
        db.close()
    failed = 0
    for o in outcomes:
        if o.bill is None:
            failed += 1
            err_console.print(f"{o.customer}: not billed: {o.problem}", markup=False)
        else:
            print(f"{o.customer}: {o.bill.total:,.2f} ({len(o.bill.lines)} lines)")
    if failed:
        raise typer.Exit(1)


@app.command("basic-charge")
def basic_charge_cmd(
    building: str = typer.Option(..., help="building id"),
    month: str = typer.Option(..., help="month, YYYY-MM (local time)"),
    site: str = typer.Option("demo", help="site file, or a shipped site name"),
    store: str = typer.Option("", help="store URL (default: SQLite file openmeg-<site>.db)"),
    share_weight: float = typer.Option(0.5, min=0.0, max=1.0, help="part shared by ownership"),
    out: Path = typer.Option(Path("out/basic-charge"), help="folder for the owners' statements"),
) -> None:
    """Share an aggregate building's basic charge among its owners; a statement for each."""
    from openmeg.provider.basic_charge_run import basic_charge_month, statement_html

    the_site = _load_site_or_exit(site)
    db = _open_store(store, the_site.site.id)
    try:
        statements = basic_charge_month(the_site, db, building, month, share_weight=share_weight)
    except ValueError as err:
        err_console.print(f"error: {err}", markup=False)
        raise typer.Exit(EXIT_BAD_INPUT) from err
    finally:
        db.close()
    b = next(x for x in the_site.buildings if x.id == building)
    total = sum(s.cents for s in statements)
    out.mkdir(parents=True, exist_ok=True)
    for s in statements:
        (out / f"basic-charge-{s.owner}-{month}.html").write_text(
            statement_html(s, building=b.name, period=month, currency=b.currency, total_cents=total)
        )
        flag = f"  ({s.estimated_intervals} estimated intervals)" if s.estimated_intervals else ""
        print(
            f"{s.owner}: peak {s.peak_kw:.2f} kW, {s.days_present}/{s.days_in_month} days, "
            f"{b.currency} {s.amount:,.2f}{flag}"
        )
    print(f"total: {b.currency} {total / 100:,.2f}")


prices_app = typer.Typer(help="The market price server.", no_args_is_help=True)
app.add_typer(prices_app, name="prices")


@prices_app.command("serve")
def prices_serve(
    csv: Path | None = typer.Option(None, help="prices from a CSV file: interval_start,buy,sell"),
    days: int = typer.Option(7, min=1, max=3660, help="synthetic prices: how many days"),
    start: str = typer.Option("", help="synthetic prices: first day (default today, UTC)"),
    seed: int = typer.Option(0, help="synthetic prices: random seed"),
    host: str = typer.Option("127.0.0.1"),
    port: int = typer.Option(8100, min=1, max=65535),
    mqtt: str = typer.Option("", help="also push the schedule on an MQTT broker host:port"),
    site: str = typer.Option("demo", help="with --mqtt: the site id whose bus carries prices"),
) -> None:
    """Serve real-time prices and their change schedule over HTTP, and the authorised time;
    with ``--mqtt``, push the schedule on the bus at every new interval too."""
    from datetime import UTC
    from datetime import datetime as dt

    import pandas as pd
    import uvicorn

    from openmeg.core.clock import WallClock
    from openmeg.market.price_server import price_app
    from openmeg.market.prices import PriceFileError, load_price_csv, synthetic_prices

    try:
        if csv is not None:
            prices = load_price_csv(csv)
        else:
            first = (
                pd.Timestamp(_utc(start)) if start else pd.Timestamp(dt.now(UTC).date(), tz="UTC")
            )
            prices = synthetic_prices(first, days, seed=seed)
    except (PriceFileError, ValueError) as err:
        err_console.print(f"error: {err}", markup=False)
        raise typer.Exit(EXIT_BAD_INPUT) from err
    print(f"serving {len(prices)} intervals on http://{host}:{port}", flush=True)
    app_ = price_app(prices, WallClock())
    if not mqtt:
        uvicorn.run(app_, host=host, port=port, log_level="warning")
        return
    import asyncio

    server = uvicorn.Server(uvicorn.Config(app_, host=host, port=port, log_level="warning"))
    asyncio.run(_serve_and_push(server, prices, mqtt, site))


async def _serve_and_push(server: Any, prices: Any, mqtt: str, site_id: str) -> None:
    """The HTTP server, and the schedule pushed on the bus at each new interval."""
    import asyncio
    import contextlib

    from openmeg.core.clock import WallClock
    from openmeg.market.feed import MarketPriceFeed
    from openmeg.protocols.mqtt import MqttBus

    host, _, port = mqtt.rpartition(":")
    bus = await MqttBus(host or "127.0.0.1", int(port)).connect()
    feed = MarketPriceFeed(site_id, bus, prices)
    clock = WallClock()

    async def push() -> None:
        while True:
            await feed.update(clock.now())
            await asyncio.sleep(1.0)

    pusher = asyncio.create_task(push())
    try:
        await server.serve()
    finally:
        pusher.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await pusher
        await bus.close()


def main() -> None:
    app()
