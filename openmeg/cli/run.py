"""``openmeg run``: the MEG live, with its devices on the wire, the API and the dashboard."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import typer

from openmeg.cli.broker import KEYSTORE, MQTT_CA, broker_access
from openmeg.cli.common import EXIT_BAD_INPUT, STORE, err_console, load_site_or_exit, open_store
from openmeg.cli.common import default_store as _default_store
from openmeg.cli.field_choice import FieldSource, choose_field
from openmeg.cli.keys import keystore_or_exit
from openmeg.core.errors import OpenMegError

if TYPE_CHECKING:
    import asyncio
    import ssl
    from datetime import datetime

    from openmeg.core.keystore import Keystore
    from openmeg.core.site import Site
    from openmeg.live import Provisioning
    from openmeg.protocols.broker_access import BrokerAccess


def run(
    site: str = typer.Option("demo", help="site file, or a shipped site name"),
    speed: float = typer.Option(1.0, min=0.001, help="times faster than real time"),
    step: float = typer.Option(1.0, min=0.1, max=60.0, help="control cycle, seconds"),
    store: str = STORE,
    mqtt: str = typer.Option(
        "",
        help="publish on an MQTT broker host:port instead of in-process, each component with "
        "its credentials from the keystore (openmeg mqtt init)",
    ),
    mqtt_ca: Path | None = MQTT_CA,
    keystore: Path | None = KEYSTORE,
    cycles: int = typer.Option(0, min=0, help="stop after this many cycles (0: run until Ctrl-C)"),
    start: str = typer.Option(
        "",
        help="simulated time starts here: a date (2026-06-01: midnight UTC) or an ISO 8601 "
        "instant (UTC if no zone; 2026-06-01T00:00-04:00 is midnight in New York); default now",
    ),
    field_source: FieldSource = typer.Option(
        FieldSource.auto,
        "--field",
        help="sim: start the simulated field and use the addresses it reports; site: connect "
        "to the site file's addresses (a real site, nothing simulated); auto: site when every "
        "device on the wire has an address and the site is not a shipped demo, else sim",
    ),
    modbus_port: int = typer.Option(
        15020,
        min=0,
        max=65000,
        help="first Modbus TCP port of the simulated field's devices without an address in the "
        "site file (0: free ports for every device)",
    ),
    status: bool = typer.Option(True, help="show the live status view"),
    prices_url: str = typer.Option(
        "", help="market prices from a price server (openmeg prices serve), e.g. http://host:8100"
    ),
    prices_csv: Path | None = typer.Option(
        None, help="market prices from a CSV file (interval_start,buy,sell) instead"
    ),
    time_server: str = typer.Option(
        "", help="an authorised NTP server HOST:PORT: start on its time, alarm if it is lost"
    ),
    api: bool = typer.Option(True, help="serve the API and the dashboard"),
    api_host: str = typer.Option("127.0.0.1", help="the API's address"),
    api_port: int = typer.Option(8000, min=0, max=65535, help="the API's port"),
    trusted_proxy: list[str] = typer.Option(
        [],
        "--trusted-proxy",
        help="a reverse proxy (CIDR, repeatable) whose X-Forwarded-For the API believes for "
        "the caller's address; by default none: the direct peer is the caller",
    ),
    tls_dir: Path | None = typer.Option(
        None,
        help="serve HTTPS with server.pem from this folder and its key from the keystore "
        "(openmeg certs init)",
    ),
    services_certs: Path | None = typer.Option(
        None,
        help="run the third-party services' provisioning system of each premises whose "
        "certificates are in this folder (openmeg services init --premises ...), in the API",
    ),
    advertiser: str = typer.Option(
        "", help="the services' advertisement server HOST:PORT (with --services-certs)"
    ),
    services_plan: list[str] = typer.Option(
        [],
        "--services-plan",
        help="PREMISES=PLAN (repeatable): a premises' plan, monitor, comfort or full; "
        "default comfort",
    ),
    services_host: str = typer.Option(
        "127.0.0.1", help="the address the provisioning systems listen on for providers"
    ),
) -> None:
    """Run the MEG live, persisted to the store; Ctrl-C stops cleanly.

    The platform operates its devices over Modbus TCP (SunSpec) and each building's BAS over
    BACnet/IP. With --field site it connects to the addresses in the site file (a real site).
    With --field sim (what auto takes for the demo and for a site whose devices lack addresses)
    it first starts the simulated field as its own program (openmeg sim serve, on the same
    clock), uses the addresses it reports, and stops it last.

    Market prices come from a price server, a CSV file, or else an embedded market with seeded
    synthetic prices; they are pushed on the bus either way."""
    import asyncio

    from openmeg.core.site import resolve_site_path
    from openmeg.market.prices import PriceFileError, load_price_csv

    the_site = load_site_or_exit(site)
    try:
        source = choose_field(the_site, resolve_site_path(site), field_source)
    except ValueError as err:
        err_console.print(f"error: {err}", markup=False)
        raise typer.Exit(EXIT_BAD_INPUT) from err
    from openmeg.cli.start_time import start_instant

    try:
        start_at = start_instant(start) if start else None
    except ValueError as err:
        err_console.print(f"error: {err}", markup=False)
        raise typer.Exit(EXIT_BAD_INPUT) from err
    if start_at is not None and time_server:
        err_console.print(
            "error: --start and --time-server both set the time: give one", markup=False
        )
        raise typer.Exit(EXIT_BAD_INPUT)
    if start_at is not None and source is not FieldSource.sim:
        err_console.print(
            "error: --start moves simulated time, and this site's field is real (--field site):"
            " its devices keep the wall clock; drop --start or use --field sim",
            markup=False,
        )
        raise typer.Exit(EXIT_BAD_INPUT)
    url = store or _default_store(the_site.site.id)
    keys = keystore_or_exit(the_site.site.id, keystore)
    live_options: dict[str, object] = {}
    if prices_url:
        live_options["price_url"] = prices_url
    elif prices_csv is not None:
        try:
            live_options["market_prices"] = load_price_csv(prices_csv)
        except PriceFileError as err:
            err_console.print(f"error: {err}", markup=False)
            raise typer.Exit(EXIT_BAD_INPUT) from err
    if time_server:
        from openmeg.core.clock import WallClock
        from openmeg.customer.time_sync import TimeSync

        host, _, port = time_server.rpartition(":")
        if not host or not port.isdigit():
            err_console.print("error: --time-server takes HOST:PORT", markup=False)
            raise typer.Exit(EXIT_BAD_INPUT)
        live_options["time_sync"] = TimeSync(WallClock(), host, int(port))
    api_options: dict[str, object] | None = None
    if api:
        api_options = {"host": api_host, "port": api_port}
        api_options["field"] = "simulated" if source is FieldSource.sim else "site"
        if trusted_proxy:
            from openmeg.api.client_address import proxy_networks

            try:
                proxy_networks(trusted_proxy)
            except ValueError as err:
                err_console.print(f"error: --trusted-proxy {err}", markup=False)
                raise typer.Exit(EXIT_BAD_INPUT) from err
            api_options["trusted_proxies"] = tuple(trusted_proxy)
        if tls_dir is not None:
            api_options["ssl_context"] = _tls_context(tls_dir, keys)
    provisioning = None
    if services_certs is not None or advertiser or services_plan:
        if not api:
            err_console.print("error: the services' provisioning needs the API", markup=False)
            raise typer.Exit(EXIT_BAD_INPUT)
        try:
            provisioning = premises_provisioning(
                the_site, keys, services_certs, advertiser, services_plan, services_host
            )
        except ValueError as err:
            err_console.print(f"error: {err}", markup=False)
            raise typer.Exit(EXIT_BAD_INPUT) from err
    try:
        broker = broker_access(mqtt, the_site.site.id, mqtt_ca, keys) if mqtt else None
    except OpenMegError as err:
        err_console.print(f"error: {err}", markup=False)
        raise typer.Exit(1) from err
    open_store(url, the_site.site.id).close()  # a store it cannot open: one line, exit 2
    try:
        summary = asyncio.run(
            _run_live(
                the_site,
                speed,
                step,
                url,
                broker,
                cycles or None,
                status,
                site,
                modbus_port if source is FieldSource.sim else None,
                live_options,
                api_options,
                keys,
                start_at,
                provisioning,
            )
        )
    except OpenMegError as err:
        err_console.print(f"error: {err}", markup=False)
        raise typer.Exit(1) from err
    print(f"stopped cleanly; points saved in {url}")
    for line in summary:
        print(line)


async def _run_live(
    site: Site,
    speed: float,
    step: float,
    url: str,
    mqtt: BrokerAccess | None,
    cycles: int | None,
    show: bool,
    site_arg: str,
    modbus_port: int | None,
    live_options: dict[str, object],
    api_options: dict[str, object] | None,
    keys: Keystore,
    start_at: datetime | None = None,
    provisioning: Provisioning | None = None,
) -> list[str]:
    """Run the MEG until stopped; the closing summary's lines."""
    import asyncio
    from collections.abc import AsyncIterator
    from contextlib import asynccontextmanager

    from rich.live import Live

    from openmeg.cli.field_process import simulated_field
    from openmeg.core.wiring import site_addresses
    from openmeg.live import FieldWire, live_meg

    @asynccontextmanager
    async def field(start: datetime, anchor: float) -> AsyncIterator[FieldWire]:
        if modbus_port is None:
            addresses = site_addresses(site)
            hosts = sorted({a.host for a in addresses})
            err_console.print(
                f"the site's field: {len(addresses)} devices on Modbus TCP at the site file's "
                f"addresses, hosts {', '.join(hosts)}"
            )
            yield FieldWire(devices=addresses, bas={b.id: (b.host, b.port) for b in site.bas})
            return
        async with simulated_field(
            site_arg,
            start=start,
            anchor_epoch_s=anchor,
            speed=speed,
            step_s=step,
            base_port=modbus_port,
            state_file=f"openmeg-{site.site.id}-field.json",
        ) as f:
            ports = [a.port for a in f.addresses]
            if api_options is not None:  # the simulator panel's controls
                api_options["field_control"] = f.control_url
            bas = "".join(f"; BAS {b} on BACnet/IP port {p}" for b, (_, p) in f.bas.items())
            err_console.print(
                f"simulated field (process {f.pid}): {len(ports)} devices on Modbus TCP, ports "
                f"{min(ports)}..{max(ports)}{bas}; its control interface on {f.control_url}"
            )
            yield FieldWire(devices=f.addresses, bas=f.bas)

    started = live_meg(
        site,
        speed=speed,
        step_s=step,
        store_url=url,
        keystore=keys,
        mqtt=mqtt,
        field=field,
        live_options=live_options,
        api_options=api_options,
        say=err_console.print,
        start_at=start_at,
        provisioning=provisioning,
    )
    async with started as (meg, web):
        for premises, system in (web.app.state.provisioning if web else {}).items():
            err_console.print(
                f"services of {premises}: plan {system.provisioning.plan.name}, providers "
                f"reach it on {system.endpoint.endpoint}",
                markup=False,
            )
        if web is not None:
            if web.admin_password:
                err_console.print(
                    f"first run: user admin, password {web.admin_password} "
                    "(shown this once: keep it safe)",
                    markup=False,
                )
            err_console.print(f"API and dashboard on {web.server.url} (API docs at /docs)")
        from openmeg.cli.run_summary import run_summary

        stop = stop_on_signals()
        began = meg.clock.now()
        if not show:
            await meg.run(stop, max_cycles=cycles)
            return run_summary(meg, began, meg.clock.now())

        from openmeg.cli.status_view import SpeedMeter, status_view

        meter = SpeedMeter()

        async def refresh(live: Live) -> None:
            while not stop.is_set():
                meter.sample(meg.status.ts)
                live.update(status_view(site, meg, speed=speed, meter=meter))
                await asyncio.sleep(0.25)

        view = status_view(site, meg, speed=speed, meter=meter)
        with Live(view, console=err_console, refresh_per_second=4) as live:
            painter = asyncio.create_task(refresh(live))
            try:
                await meg.run(stop, max_cycles=cycles)
            finally:
                stop.set()
                await painter
        return run_summary(meg, began, meg.clock.now())


def premises_provisioning(
    site: Site,
    keys: Keystore,
    certs: Path | None,
    advertiser: str,
    plans: list[str],
    host: str = "127.0.0.1",
) -> Provisioning:
    """The provisioning system of each premises whose certificates (``premises-<id>``) are in
    ``certs``, on its plan (``PREMISES=PLAN``, default comfort), relaying to its BAS where the
    field answers; ``ValueError`` saying what is wrong."""
    from collections.abc import AsyncIterator, Mapping
    from contextlib import asynccontextmanager

    from openmeg.app import LiveMeg
    from openmeg.core.addresses import ModbusAddress
    from openmeg.core.clock import WallClock
    from openmeg.customer.provisioning_bacnet import (
        BacnetGateway,
        premises_clients,
        premises_discovery,
    )
    from openmeg.customer.provisioning_service import ProvisioningService
    from openmeg.live import FieldWire
    from openmeg.provider.advert_identity import TlsIdentity
    from openmeg.provider.advertisement import PLANS

    if certs is None:
        raise ValueError("--advertiser and --services-plan go with --services-certs DIR")
    if not advertiser:
        raise ValueError("--services-certs needs --advertiser HOST:PORT")
    name, _, port = advertiser.rpartition(":")
    if not name or not port.isdigit():
        raise ValueError(f"--advertiser {advertiser!r} is not HOST:PORT")
    premises = sorted({c.id for c in site.customers} | {b.premises for b in site.bas})
    chosen: dict[str, str] = {}
    for given in plans:
        who, _, plan = given.partition("=")
        if who not in premises:
            raise ValueError(f"--services-plan {given!r}: no premises {who!r} in the site")
        if plan not in PLANS:
            raise ValueError(f"--services-plan {given!r}: no plan {plan!r}: use {', '.join(PLANS)}")
        chosen[who] = plan
    identities: dict[str, TlsIdentity] = {}
    for who in premises:
        if (certs / f"premises-{who}-client.pem").is_file():
            try:
                identities[who] = TlsIdentity.load(f"premises-{who}", certs, "providers", keys)
            except FileNotFoundError as err:
                raise ValueError(str(err)) from err
    if not identities:
        raise ValueError(
            f"no premises' certificates in {certs}: run openmeg services init --premises ID"
        )
    unsure = sorted(set(chosen) - set(identities))
    if unsure:
        raise ValueError(f"--services-plan for {', '.join(unsure)}: no certificates in {certs}")

    def wired(wire: FieldWire) -> Site:
        """The site with the addresses its field answers on."""
        at = {a.id: ModbusAddress(host=a.host, port=a.port, unit=a.unit) for a in wire.devices}
        devices = tuple(
            d.model_copy(update={"address": at[d.id]}) if d.id in at else d for d in site.devices
        )
        bas = tuple(
            b.model_copy(update={"host": wire.bas[b.id][0], "port": wire.bas[b.id][1]})
            if b.id in wire.bas
            else b
            for b in site.bas
        )
        return site.model_copy(update={"devices": devices, "bas": bas})

    @asynccontextmanager
    async def started(
        meg: LiveMeg, wire: FieldWire
    ) -> AsyncIterator[Mapping[str, ProvisioningService]]:
        field_site = wired(wire)
        systems: dict[str, ProvisioningService] = {}
        clients = []
        try:
            for who, me in identities.items():
                mine = premises_clients(field_site, who)
                gateway = BacnetGateway(mine)
                system = ProvisioningService(
                    identity=me,
                    plan=PLANS[chosen.get(who, "comfort")],
                    keystore=keys,
                    audit=meg.audit,
                    clock=WallClock(),
                    discover=premises_discovery(field_site, who, gateway, mdns=False),
                    gateway=gateway,
                    host=host,
                    advertiser=advertiser,
                )
                await system.start()
                systems[who] = system
                for c in mine.values():
                    clients.append(c)
                    await c.start()
            yield systems
        finally:
            for system in systems.values():
                await system.close()
            for c in clients:
                await c.stop()

    return started


def _tls_context(folder: Path, keys: Keystore) -> ssl.SSLContext:
    """The API's TLS context: ``server.pem`` from ``folder``, its key from the keystore (key
    files an older openmeg left there are moved into the keystore first); or exit 2."""
    import ssl

    from openmeg.protocols.tls import adopt_key_files, server_context

    cert = folder / "server.pem"
    if not cert.exists():
        err_console.print(f"error: no server.pem in {folder}: run openmeg certs init")
        raise typer.Exit(EXIT_BAD_INPUT)
    adopt_key_files(folder, keys)
    try:
        return server_context(cert, keys)
    except (FileNotFoundError, ssl.SSLError) as err:
        err_console.print(f"error: {err}", markup=False)
        raise typer.Exit(EXIT_BAD_INPUT) from err


def stop_on_signals() -> asyncio.Event:
    """An event set by SIGINT or SIGTERM."""
    import asyncio
    import contextlib
    import signal

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    return stop
