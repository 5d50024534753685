"""``openmeg market``: the local P2P market, orders and settlements."""

from __future__ import annotations

from datetime import datetime

import typer

from openmeg.cli.common import SITE, STORE, fail, open_site_store, period, utc

market_app = typer.Typer(help="The local P2P market: orders and settlements.", no_args_is_help=True)


@market_app.command("order")
def market_order(
    customer: str = typer.Option(..., help="the prosumer"),
    interval: str = typer.Option(..., help="the interval's start (ISO 8601; UTC if no zone)"),
    side: str = typer.Option(..., help="buy or sell"),
    price: float = typer.Option(..., help="limit price per kWh"),
    kwh: float = typer.Option(..., help="quantity"),
    site: str = SITE,
    store: str = STORE,
) -> None:
    """Enter an order for an interval ahead (it replaces the one derived from the meter)."""
    from datetime import UTC

    from openmeg.market.clearing import BID, OFFER
    from openmeg.market.local_market import MarketError, Order, site_market

    if side not in ("buy", "sell"):
        fail("--side is buy or sell")
    the_site, db = open_site_store(site, store)
    market = site_market(db, the_site)
    try:
        start = utc(interval)
        order = Order(
            customer=customer, side=BID if side == "buy" else OFFER, price=price, quantity_kwh=kwh
        )
        market.enter(start, order, now=datetime.now(UTC))
    except (ValueError, MarketError) as err:
        fail(str(err))
    finally:
        db.close()
    print(
        f"{customer}: {side} {kwh:g} kWh at {price:g} "
        f"in the interval from {start:%Y-%m-%d %H:%M} UTC"
    )


@market_app.command("settlement")
def market_settlement(
    start: str = typer.Option(..., "--from", help="first interval (ISO 8601; UTC if no zone)"),
    end: str = typer.Option(..., "--to", help="end, excluded"),
    customer: str = typer.Option("", help="one prosumer only"),
    site: str = SITE,
    store: str = STORE,
) -> None:
    """Energy traded locally and with the utility, and money, per prosumer."""
    from openmeg.market.local_market import settlement_totals, site_market

    t0, t1 = period(start, end)
    the_site, db = open_site_store(site, store)
    try:
        rows = site_market(db, the_site).settlement(t0, t1)
    finally:
        db.close()
    if customer:
        rows = rows[rows.customer == customer]
    if rows.empty:
        fail(
            f"no settled interval from {t0:%Y-%m-%d %H:%M} to {t1:%Y-%m-%d %H:%M} UTC"
            + (f" for {customer}" if customer else "")
            + ": the local market settles each interval while the MEG runs; run it through that "
            "period first (openmeg run --start 2026-06-01 ...)",
            code=1,
        )
    for c, r in settlement_totals(rows).iterrows():
        print(
            f"{c}: local {r.local_kwh:+.3f} kWh, utility {r.utility_kwh:+.3f} kWh, "
            f"paid {r.money:+.2f}"
        )
    print(f"{rows.interval_start.nunique()} intervals; + bought or paid, - sold or received")
