"""``openmeg prices``: the market price server."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import typer

from openmeg.cli.broker import KEYSTORE, MQTT_CA, component_login
from openmeg.cli.common import EXIT_BAD_INPUT, err_console, utc

if TYPE_CHECKING:
    import pandas as pd

    from openmeg.market.feed import Serving
    from openmeg.protocols.broker_access import Login

prices_app = typer.Typer(help="The market price server.", no_args_is_help=True)


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
    mqtt_ca: Path | None = MQTT_CA,
    keystore: Path | None = KEYSTORE,
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
                pd.Timestamp(utc(start)) if start else pd.Timestamp(dt.now(UTC).date(), tz="UTC")
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

    from openmeg.core.errors import OpenMegError

    try:
        login = component_login(mqtt, site, "market", mqtt_ca, keystore)
    except OpenMegError as err:
        err_console.print(f"error: {err}", markup=False)
        raise typer.Exit(1) from err
    server = uvicorn.Server(uvicorn.Config(app_, host=host, port=port, log_level="warning"))
    asyncio.run(_serve_and_push(server, prices, login, site))


async def _serve_and_push(
    server: Serving, prices: pd.DataFrame, login: tuple[str, int, Login], site_id: str
) -> None:
    """The HTTP server, and the schedule pushed on the bus at each new interval."""
    from openmeg.core.clock import WallClock
    from openmeg.market.feed import MarketPriceFeed, serve_with_feed
    from openmeg.protocols.mqtt import MqttBus

    host, port, who = login
    bus = await MqttBus(host, port, login=who).connect()
    try:
        await serve_with_feed(server, MarketPriceFeed(site_id, bus, prices), WallClock())
    finally:
        await bus.close()
