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
    """The money of the local days (in the site's time zone) that begin in the period, settled
    on the validated series (each validated day not yet settled on its readings is settled
    now); the days not validated yet, and what was cleared in real time but is not settled."""
    from datetime import UTC

    from openmeg.customer.price_book import PriceBook
    from openmeg.market.local_market import settlement_totals, site_market
    from openmeg.market.settlement_run import local_days, site_settlement

    t0, t1 = period(start, end)
    the_site, db = open_site_store(site, store)
    tz = the_site.site.timezone
    try:
        book = PriceBook(
            db, the_site.site.id, max_abs_per_kwh=the_site.input_limits.max_abs_price_per_kwh
        )
        settlement = site_settlement(db, the_site, book)
        days = local_days(t0, t1, tz)
        outcomes = settlement.settle_days(days, now=datetime.now(UTC))
        waiting = {s.day: s.waiting for s in settlement.states(days)}
        for o in outcomes:
            waiting[o.day] = o.waiting
        settled = settlement.latest([d.isoformat() for d in days])
        realtime = site_market(db, the_site).settlement(t0, t1)
    finally:
        db.close()
    if customer:
        settled = settled[settled.customer == customer]
        realtime = realtime[realtime.customer == customer]
        waiting = {d: {customer: w[customer]} for d, w in waiting.items() if customer in w}
    if not realtime.empty:
        local_day = realtime.interval_start.dt.tz_convert(tz).dt.date.astype(str)
        done = set(zip(settled.day, settled.customer, strict=True))
        keys = zip(local_day, realtime.customer, strict=True)
        realtime = realtime[[k not in done for k in keys]]
    unmetered = all(
        w.endswith(f"no readings on {d}") for d, ws in waiting.items() for w in ws.values()
    )
    if settled.empty and realtime.empty:
        why = (
            "the local market clears each interval while the MEG runs and settles its days "
            "once VEE has validated them; run it through that period first "
            "(openmeg run --start 2026-06-01 ...)"
            if unmetered
            else "not validated yet: " + _waiting(waiting)
        )
        fail(
            f"no settled interval from {t0:%Y-%m-%d %H:%M} to {t1:%Y-%m-%d %H:%M} UTC"
            + (f" for {customer}" if customer else "")
            + f": {why}",
            code=1,
        )
    if not settled.empty:
        print(f"settled on the validated series, local days in {tz}:")
        for c, rows in settled.groupby("customer"):
            revisions = ", ".join(f"{r.day} rev {r.revision}" for r in rows.itertuples())
            print(
                f"{c}: local {rows.local_kwh.sum():+.3f} kWh, utility "
                f"{rows.utility_kwh.sum():+.3f} kWh, paid {rows.money_cents.sum() / 100:+.2f} "
                f"({revisions})"
            )
    if any(waiting.values()):
        print("not settled yet: " + _waiting(waiting))
    if not realtime.empty:
        print("cleared in real time on the readings as they came, not settled yet:")
        for c, r in settlement_totals(realtime).iterrows():
            print(
                f"{c}: local {r.local_kwh:+.3f} kWh, utility {r.utility_kwh:+.3f} kWh, "
                f"paid {r.money:+.2f}"
            )
        print(
            f"{realtime.interval_start.nunique()} intervals; + bought or paid, - sold or received"
        )
    else:
        print("+ bought or paid, - sold or received")


def _waiting(waiting: dict[str, dict[str, str]], most: int = 3) -> str:
    """The days not settled for some prosumers: who, and why for the first."""
    parts = []
    for day, who in sorted(waiting.items()):
        if who:
            names = sorted(who)
            more = f" and {len(names) - most} more" if len(names) > most else ""
            parts.append(f"{day} for {', '.join(names[:most])}{more} ({who[names[0]]})")
    return "; ".join(parts)
