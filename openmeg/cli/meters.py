"""``openmeg meters``: meter data, AMI ingest into the MDMS, files in and out."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import typer

from openmeg.cli.broker import KEYSTORE, MQTT_CA, component_login
from openmeg.cli.common import (
    EXIT_BAD_INPUT,
    SITE,
    STORE,
    err_console,
    fail_all,
    load_site_or_exit,
    open_store,
    utc,
)
from openmeg.core.errors import OpenMegError

if TYPE_CHECKING:
    from openmeg.core.site import Site

meters_app = typer.Typer(help="Meter data: AMI ingest into the MDMS.", no_args_is_help=True)


@meters_app.command("ingest")
def meters_ingest(
    site: str = SITE,
    mqtt: str = typer.Option("127.0.0.1:1883", help="MQTT broker host:port"),
    store: str = STORE,
    session: str = typer.Option("", help="MQTT session name (default openmeg-mdms-<site>)"),
    mqtt_ca: Path | None = MQTT_CA,
    keystore: Path | None = KEYSTORE,
    batch: int = typer.Option(500, min=1, help="messages stored per transaction, at most"),
    batch_delay: float = typer.Option(
        0.2, min=0.0, help="seconds a message may wait for its batch to fill"
    ),
) -> None:
    """Take interval readings from the AMI over MQTT into the MDMS, in batches: each message
    is acknowledged only once its batch is committed, so nothing acknowledged is lost if this
    process dies (the broker sends again what was not acknowledged)."""
    import signal

    from openmeg.core.messages import readings_topic
    from openmeg.operation.mdms.ingest import IngestService
    from openmeg.protocols.durable import DurableSubscriber

    the_site = load_site_or_exit(site)
    site_id = the_site.site.id
    db = open_store(store, site_id)
    try:
        host, port, login = component_login(mqtt, site_id, "mdms", mqtt_ca, keystore)
        sub = DurableSubscriber(
            host,
            port,
            client_id=session or f"openmeg-mdms-{site_id}",
            topic=readings_topic(site_id, "+"),
            login=login,
        )
    except OpenMegError as err:
        err_console.print(f"error: {err}", markup=False)
        raise typer.Exit(1) from err
    stopping = []
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stopping.append(True))
    service = IngestService(
        site_id,
        sub,
        db,
        {m.id for m in the_site.meters},
        batch_messages=batch,
        batch_delay_s=batch_delay,
        max_interval_kwh=the_site.meter_max_kw() * 0.25,
    )
    try:
        service.wait_connected()
    except OpenMegError as err:
        err_console.print(f"error: {err}", markup=False)
        raise typer.Exit(1) from err
    print("ready", flush=True)
    service.run_durable(lambda: bool(stopping))
    sub.close()
    db.close()
    print(f"stopped: {service.stored} readings stored, {service.refused} messages refused")


@meters_app.command("import")
def meters_import(
    file: Path = typer.Argument(..., help="CSV, Parquet or Green Button XML"),
    site: str = SITE,
    store: str = STORE,
    received_at: str = typer.Option(
        "",
        help="the instant the readings were received, ISO 8601 (default: now); readings after "
        "it are refused as future: give a simulation's end (openmeg simulate prints it) to "
        "import simulated readings ahead of the wall clock",
    ),
) -> None:
    """Import interval readings (docs/meter-data.md: columns meter, channel, interval_start,
    value_kwh); a file with any bad row is refused whole (exit 2)."""
    from openmeg.operation.mdms.files import read_readings
    from openmeg.operation.mdms.store import IngestError, MeterReadings

    the_site = load_site_or_exit(site)
    try:
        received = utc(received_at) if received_at else None
    except ValueError as err:
        err_console.print(f"error: --received-at: {err}", markup=False)
        raise typer.Exit(EXIT_BAD_INPUT) from err
    if not file.exists():
        err_console.print(f"error: {file}: no such file", markup=False)
        raise typer.Exit(EXIT_BAD_INPUT)
    db = open_store(store, the_site.site.id)
    try:
        frame = read_readings(file)
        report = MeterReadings(db).ingest(
            frame,
            meters=_metered(the_site),
            source=file.name,
            received_at=received,
            max_kwh=the_site.meter_max_kw() * 0.25,
        )
    except IngestError as err:
        fail_all(err.problems)
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
    site: str = SITE,
    store: str = STORE,
) -> None:
    """Export raw interval readings."""
    from openmeg.operation.mdms.files import write_readings
    from openmeg.operation.mdms.store import MeterReadings

    the_site = load_site_or_exit(site)
    known = _metered(the_site)
    if unknown := [m for m in meter if m not in known]:
        err_console.print(f"error: unknown meter(s): {', '.join(unknown)}")
        raise typer.Exit(EXIT_BAD_INPUT)
    try:
        t0, t1 = utc(start), utc(end)
    except ValueError as err:
        err_console.print(f"error: {err}", markup=False)
        raise typer.Exit(EXIT_BAD_INPUT) from err
    if t1 <= t0:
        err_console.print(
            f"error: --start {start} is not before --end {end}: give a period that ends "
            "after it starts",
            markup=False,
        )
        raise typer.Exit(EXIT_BAD_INPUT)
    db = open_store(store, the_site.site.id)
    try:
        frame = MeterReadings(db).long_frame(meter, t0, t1)
    finally:
        db.close()
    if frame.empty:
        err_console.print(
            f"error: no readings of {', '.join(meter)} from {t0:%Y-%m-%d %H:%M} to "
            f"{t1:%Y-%m-%d %H:%M} UTC in the store: import them (openmeg meters import FILE), "
            "simulate that period with --store, or run the MEG through it first; nothing written",
            markup=False,
        )
        raise typer.Exit(1)
    try:
        write_readings(frame, out)
    except ValueError as err:
        err_console.print(f"error: {err}")
        raise typer.Exit(EXIT_BAD_INPUT) from err
    print(f"{out}: {len(frame)} readings")


def _metered(site: Site) -> set[str]:
    """What has readings: the site's meters and the devices' own revenue meters (by device id),
    as the live MDMS ingest takes them."""
    from openmeg.customer.revenue_calc import revenue_devices

    return {m.id for m in site.meters} | set(revenue_devices(site))
