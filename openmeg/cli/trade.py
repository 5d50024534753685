"""``openmeg trade``: the power trading system's control point (reference prices, accounts)."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

import typer

from openmeg.cli.common import SITE, STORE, fail, open_site_store, period

if TYPE_CHECKING:
    from collections.abc import Iterable

    from openmeg.customer.trading import ReferencePrices

trade_app = typer.Typer(
    help="Automated power trading: reference prices and accounts.", no_args_is_help=True
)


def _window(text: str) -> tuple[int, int, float, float]:
    """``FROM-TO:PURCHASE:SALE``, e.g. ``17-21:0.10:0.30``."""
    try:
        hours, purchase, sale = text.split(":")
        start, end = hours.split("-")
        return int(start), int(end), float(purchase), float(sale)
    except ValueError:
        fail(f"window {text!r}: write FROM-TO:PURCHASE:SALE, e.g. 17-21:0.10:0.30")


@trade_app.command("set")
def trade_set(
    customer: str = typer.Option(..., help="the prosumer"),
    purchase: float | None = typer.Option(None, help="buy (charge) at or below this price"),
    sale: float | None = typer.Option(None, help="sell (discharge) at or above this price"),
    window: list[str] = typer.Option(
        [], help="per time window instead, local hours: FROM-TO:PURCHASE:SALE (repeatable)"
    ),
    incentive: float = typer.Option(0.0, help="incentive per kWh sold"),
    user: str = typer.Option("operator", help="who sets them (kept in the event log)"),
    site: str = SITE,
    store: str = STORE,
) -> None:
    """Set a prosumer's reference prices (all day, or per time window of the day)."""
    from datetime import UTC

    from openmeg.cli.keys import audit_or_exit
    from openmeg.customer.trading import ReferencePrices
    from openmeg.customer.trading_desk import TradingError, TradingSettings

    the_site, db = open_site_store(site, store)
    try:
        if window:
            refs = [
                ReferencePrices(purchase=p, sale=s, from_hour=a, to_hour=b)
                for a, b, p, s in map(_window, window)
            ]
        elif purchase is None or sale is None:
            fail("give --purchase and --sale, or --window FROM-TO:PURCHASE:SALE")
        else:
            refs = [ReferencePrices(purchase=purchase, sale=sale)]
        settings = TradingSettings(db, the_site, audit=audit_or_exit(the_site.site.id, db))
        result = settings.set(
            customer, refs, user=user, now=datetime.now(UTC), incentive_per_kwh=incentive
        )
    except (ValueError, TradingError) as err:
        fail(str(err))
    finally:
        db.close()
    _print_references(result.customer, result.references)


def _print_references(customer: str, references: Iterable[ReferencePrices]) -> None:
    for r in references:
        print(
            f"{customer}: {r.from_hour:02d}-{r.to_hour:02d} h: buy at or below {r.purchase:g}, "
            f"sell at or above {r.sale:g}"
        )


@trade_app.command("show")
def trade_show(site: str = SITE, store: str = STORE) -> None:
    """The reference prices of every trading prosumer."""
    from openmeg.customer.trading_desk import TradingSettings

    the_site, db = open_site_store(site, store)
    try:
        trading = TradingSettings(db, the_site).all()
    finally:
        db.close()
    if not trading:
        print("nobody trades: set reference prices with openmeg trade set")
    for c, t in trading.items():
        _print_references(c, t.references)


@trade_app.command("stop")
def trade_stop(
    customer: str = typer.Option(..., help="the prosumer"),
    user: str = typer.Option("operator"),
    site: str = SITE,
    store: str = STORE,
) -> None:
    """Stop trading for a prosumer."""
    from datetime import UTC

    from openmeg.cli.keys import audit_or_exit
    from openmeg.customer.trading_desk import TradingError, TradingSettings

    the_site, db = open_site_store(site, store)
    try:
        audit = audit_or_exit(the_site.site.id, db)
        TradingSettings(db, the_site, audit=audit).clear(customer, user=user, now=datetime.now(UTC))
    except TradingError as err:
        fail(str(err))
    finally:
        db.close()
    print(f"{customer}: trading stopped")


@trade_app.command("accounts")
def trade_accounts(
    customer: str = typer.Option(..., help="the prosumer"),
    start: str = typer.Option(..., "--from", help="first instant (ISO 8601; UTC if no zone)"),
    end: str = typer.Option(..., "--to", help="end instant, excluded"),
    site: str = SITE,
    store: str = STORE,
) -> None:
    """Purchases, sales and incentives from the prosumer's smart meter and market prices."""
    from openmeg.customer.trading_desk import TradingError, prosumer_accounts

    the_site, db = open_site_store(site, store)
    try:
        t0, t1 = period(start, end)
        report = prosumer_accounts(the_site, db, customer, t0, t1)
    except TradingError as err:
        fail(str(err))
    finally:
        db.close()
    if report.intervals == 0:
        fail(
            f"{customer} ({report.meter}): no interval from {t0:%Y-%m-%d %H:%M} to "
            f"{t1:%Y-%m-%d %H:%M} UTC has both a reading and a market price: run the MEG through "
            "that period first (openmeg run --start 2026-06-01 ...), or import the meter's "
            "readings (openmeg meters import FILE) and the prices (openmeg run --prices-csv)",
            code=1,
        )
    a = report.accounts
    print(f"{customer} ({report.meter}) {t0:%Y-%m-%d %H:%M} .. {t1:%Y-%m-%d %H:%M} UTC")
    print(f"  bought {report.import_kwh:.3f} kWh for {a.purchases}")
    print(f"  sold {report.export_kwh:.3f} kWh for {a.sales}, incentives {a.incentives}")
    print(f"  net {a.net}")
    if report.missing_intervals:
        print(f"  {report.missing_intervals} intervals without a reading or a price")
