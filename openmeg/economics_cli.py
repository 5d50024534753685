"""``openmeg trade`` (the trading system's control point) and ``openmeg revenue`` (the energy
revenue calculating system)."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from openmeg.cli_common import fail, load_site_or_exit, open_store, utc

if TYPE_CHECKING:
    from collections.abc import Iterable

    from openmeg.core.site import Site
    from openmeg.core.store import Store
    from openmeg.customer.trading import ReferencePrices

trade_app = typer.Typer(
    help="Automated power trading: reference prices and accounts.", no_args_is_help=True
)

SITE = typer.Option("demo", help="site file, or a shipped site name")
STORE = typer.Option("", help="store URL (default: SQLite file openmeg-<site>.db)")


def _window(text: str) -> tuple[int, int, float, float]:
    """``FROM-TO:PURCHASE:SALE``, e.g. ``17-21:0.10:0.30``."""
    try:
        hours, purchase, sale = text.split(":")
        start, end = hours.split("-")
        return int(start), int(end), float(purchase), float(sale)
    except ValueError:
        fail(f"window {text!r}: write FROM-TO:PURCHASE:SALE, e.g. 17-21:0.10:0.30")


def _open(site_name: str, store: str) -> tuple[Site, Store]:
    site = load_site_or_exit(site_name)
    return site, open_store(store, site.site.id)


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

    from openmeg.customer.trading import ReferencePrices
    from openmeg.customer.trading_desk import TradingError, TradingSettings

    the_site, db = _open(site, store)
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
        settings = TradingSettings(db, the_site)
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

    the_site, db = _open(site, store)
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

    from openmeg.customer.trading_desk import TradingError, TradingSettings

    the_site, db = _open(site, store)
    try:
        TradingSettings(db, the_site).clear(customer, user=user, now=datetime.now(UTC))
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
    from openmeg.customer.price_book import PriceBook
    from openmeg.customer.trading_desk import (
        TradingError,
        TradingSettings,
        meter_of,
        trading_accounts,
    )
    from openmeg.operation.mdms.store import MeterReadings

    the_site, db = _open(site, store)
    try:
        t0, t1 = _period(start, end)
        meter = meter_of(the_site, customer)
        settings = TradingSettings(db, the_site).get(customer)
        report = trading_accounts(
            MeterReadings(db),
            PriceBook(db, the_site.site.id),
            meter,
            t0,
            t1,
            incentive_per_kwh=settings.incentive_per_kwh if settings else 0.0,
        )
    except TradingError as err:
        fail(str(err))
    finally:
        db.close()
    a = report.accounts
    print(f"{customer} ({meter}) {t0:%Y-%m-%d %H:%M} .. {t1:%Y-%m-%d %H:%M} UTC")
    print(f"  bought {report.import_kwh:.3f} kWh for {a.purchases}")
    print(f"  sold {report.export_kwh:.3f} kWh for {a.sales}, incentives {a.incentives}")
    print(f"  net {a.net}")
    if report.missing_intervals:
        print(f"  {report.missing_intervals} intervals without a reading or a price")


def _period(start: str, end: str) -> tuple[datetime, datetime]:
    try:
        t0, t1 = utc(start), utc(end)
    except ValueError as err:
        fail(f"not an instant: {err}")
    if t1 <= t0:
        fail("--to must come after --from")
    return t0, t1


def revenue_cmd(
    start: str = typer.Option(..., "--from", help="first instant (ISO 8601; UTC if no zone)"),
    end: str = typer.Option(..., "--to", help="end instant, excluded"),
    device: list[str] = typer.Option(
        [], help="a device (repeatable; default: every device with a meter of its own)"
    ),
    by: str = typer.Option("day", help="interval, hour, day or month"),
    arrangement: str = typer.Option(
        "central", help="central (one calculator) or per-device (one calculator each)"
    ),
    csv: Path | None = typer.Option(None, help="also write the table to this CSV file"),
    site: str = SITE,
    store: str = STORE,
) -> None:
    """What each power device earned: energy out x sale price - energy in x purchase price."""
    from openmeg.customer.price_book import PriceBook
    from openmeg.customer.revenue_calc import (
        PERIODS,
        CentralRevenueCalculator,
        per_device_table,
        revenue_devices,
    )
    from openmeg.operation.mdms.store import MeterReadings

    if by not in PERIODS:
        fail(f"--by must be one of {', '.join(PERIODS)}")
    if arrangement not in ("central", "per-device"):
        fail("--arrangement must be central or per-device")
    the_site, db = _open(site, store)
    try:
        known = revenue_devices(the_site)
        unknown = [d for d in device if d not in known]
        if unknown:
            fail(f"no revenue meter on {', '.join(unknown)}; devices with one: {', '.join(known)}")
        devices = list(device) or known
        t0, t1 = _period(start, end)
        readings, book = MeterReadings(db), PriceBook(db, the_site.site.id)
        if arrangement == "central":
            table = CentralRevenueCalculator(devices, readings, book).table(t0, t1)
        else:
            table = per_device_table(devices, readings, book, t0, t1)
    finally:
        db.close()
    frame = table.by_period(by, the_site.site.timezone)
    totals = table.totals()
    for d, row in totals.iterrows():
        print(f"{d}: out {row.out_kwh:.3f} kWh, in {row.in_kwh:.3f} kWh, revenue {row.revenue:.2f}")
    print(f"all devices: {totals.revenue.sum():.2f} (in the market prices' currency)")
    if table.unpriced_intervals:
        print(f"{table.unpriced_intervals} intervals without a market price count nothing")
    if csv is not None:
        frame.round(6).to_csv(csv)
        print(f"wrote {csv}")


market_app = typer.Typer(help="The local P2P market: orders and settlements.", no_args_is_help=True)


def _local_market(site_name: str, store: str) -> tuple[Site, Store, object]:
    from openmeg.market.local_market import LocalMarket

    the_site, db = _open(site_name, store)
    customers = {m.customer for m in the_site.meters if m.parent is None}
    return the_site, db, LocalMarket(db, the_site.site.id, customers)


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
    from openmeg.market.local_market import LocalMarket, MarketError, Order

    if side not in ("buy", "sell"):
        fail("--side is buy or sell")
    _, db, market = _local_market(site, store)
    assert isinstance(market, LocalMarket)
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
    from openmeg.market.local_market import LocalMarket

    t0, t1 = _period(start, end)
    _, db, market = _local_market(site, store)
    assert isinstance(market, LocalMarket)
    try:
        rows = market.settlement(t0, t1)
    finally:
        db.close()
    if customer:
        rows = rows[rows.customer == customer]
    if rows.empty:
        print("no settled interval in that period")
        return
    totals = rows.groupby("customer")[["local_kwh", "utility_kwh", "money"]].sum()
    for c, r in totals.iterrows():
        print(
            f"{c}: local {r.local_kwh:+.3f} kWh, utility {r.utility_kwh:+.3f} kWh, "
            f"paid {r.money:+.2f}"
        )
    print(f"{rows.interval_start.nunique()} intervals; + bought or paid, - sold or received")
