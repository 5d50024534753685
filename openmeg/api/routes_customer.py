"""Customers' data: meters and readings, bills, basic charges, prices, trading, revenue and the
local market. A prosumer sees their own only."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fastapi import APIRouter, Depends, HTTPException, Query

from openmeg.api.auth import ERRORS, principal, scope, services
from openmeg.api.context import ApiServices, Scope
from openmeg.api.edit_checks import edit_problem
from openmeg.api.routes_operation import span
from openmeg.api.schemas import (
    AccountsOut,
    BillLineOut,
    BillOut,
    DaySettlementOut,
    EditIn,
    MeterOut,
    PriceOut,
    ReadingOut,
    RevenueOut,
    SettlementOut,
    ShareOut,
    TradingIn,
    TradingOut,
    WindowIn,
)
from openmeg.core.identity import Principal
from openmeg.customer.revenue_calc import CentralRevenueCalculator, revenue_devices
from openmeg.customer.trading import ReferencePrices
from openmeg.customer.trading_desk import TradingError, meter_of, trading_accounts
from openmeg.market.settlement_run import local_days, site_settlement
from openmeg.operation.mdms.validated import EditError, ValidatedReadings
from openmeg.provider.basic_charge_run import basic_charge_month
from openmeg.provider.billing import BillLine
from openmeg.provider.issued_bills import IssuedBills

router = APIRouter(prefix="/api/v1", responses=ERRORS)


def a_month() -> Any:
    """The ``period`` query parameter: a month. A new one for each route (a parameter object
    shared by two routes would take the first one's name in both)."""
    return Query(
        ...,
        pattern=r"^(19|20|21)\d\d-(0[1-9]|1[0-2])$",
        description="a month, YYYY-MM (01-12) of the years 1900 to 2199",
    )


def _customer(svc: ApiServices, customer: str, seen: Scope) -> None:
    if customer not in {c.id for c in svc.site.customers}:
        raise HTTPException(404, f"no customer {customer!r}")
    seen.customer(customer)


@router.get("/meters", response_model=list[MeterOut])
def meters_list(
    svc: ApiServices = Depends(services), seen: Scope = Depends(scope)
) -> list[MeterOut]:
    return [
        MeterOut(id=m.id, customer=m.customer, parent=m.parent, devices=list(m.devices))
        for m in svc.site.meters
        if seen.everything or m.id in seen.meters
    ]


@router.get("/meters/{meter}/readings", response_model=list[ReadingOut])
def meter_readings(
    meter: str,
    start: datetime = Query(...),
    end: datetime = Query(...),
    channel: str = Query("import", pattern="^(import|export)$"),
    svc: ApiServices = Depends(services),
    seen: Scope = Depends(scope),
) -> list[ReadingOut]:
    """Raw 15-minute readings as the meter delivered them."""
    if meter not in {m.id for m in svc.site.meters}:
        raise HTTPException(404, f"no meter {meter!r}")
    seen.meter(meter)
    t0, t1 = span(start, end)
    series = svc.readings.series(meter, channel, t0, t1)
    return [ReadingOut(interval_start=t, value_kwh=v) for t, v in series.items()]


@router.post("/meters/{meter}/edits", status_code=201)
def meter_edit(
    meter: str,
    body: EditIn,
    who: Principal = Depends(principal),
    svc: ApiServices = Depends(services),
) -> dict[str, int]:
    """A manual edit of a validated reading: a new version, with who and why, audited."""
    if meter not in {m.id for m in svc.site.meters}:
        raise HTTPException(404, f"no meter {meter!r}")
    now = svc.clock.now()
    meters = {m.id for m in svc.site.meters}
    problem = edit_problem(meters, meter, body.channel, body.interval_start, body.value_kwh, now)
    if problem is not None:
        raise HTTPException(422, f"edit refused, nothing stored: {problem}")
    try:
        version = ValidatedReadings(svc.store, svc.site.site.id).edit(
            meter,
            body.channel,
            body.interval_start,
            body.value_kwh,
            user=who.name,
            reason=body.reason,
            audit=svc.audit,
            now=now,
        )
    except EditError as err:
        raise HTTPException(422, str(err)) from err
    return {"version": version}


def _line_out(line: BillLine) -> BillLineOut:
    return BillLineOut(
        description=line.description,
        quantity=float(line.quantity),
        unit=line.unit,
        rate=float(line.rate),
        amount=float(line.amount),
    )


@router.get("/bills/{customer}", response_model=BillOut)
def bill_of(
    customer: str,
    period: str = a_month(),
    revision: int | None = Query(None, ge=1, le=10_000, description="a revision; the newest"),
    svc: ApiServices = Depends(services),
    seen: Scope = Depends(scope),
) -> BillOut:
    """The customer's issued bill for a month (its newest revision, or the one asked for)."""
    _customer(svc, customer, seen)
    revisions = IssuedBills(svc.store, svc.site.site.id, svc.site.site.timezone).revisions(
        customer, period
    )
    if not revisions:
        raise HTTPException(
            404,
            f"no bill issued to {customer} for {period}: the provider issues the month's "
            f"bills with openmeg bill --period {period} once its readings are validated",
        )
    if revision is not None and revision > len(revisions):
        raise HTTPException(404, f"the bill has {len(revisions)} revisions, not {revision}")
    i = revisions[(revision or len(revisions)) - 1]
    b = i.bill
    return BillOut(
        number=i.number,
        revision=i.revision,
        revisions=len(revisions),
        kind=i.kind,
        issued_at=i.issued_at,
        customer=b.customer,
        meter=b.meter,
        tariff=b.tariff,
        tariff_version=i.tariff_version,
        start=b.start.to_pydatetime(),
        end=b.end.to_pydatetime(),
        lines=[_line_out(x) for x in b.lines],
        total=float(b.total),
        note=[_line_out(x) for x in i.note],
        difference=None if i.difference is None else float(i.difference),
        content_hash=i.content_hash,
    )


@router.get("/basic-charges/{building}", response_model=list[ShareOut])
def basic_charge_of(
    building: str,
    period: str = a_month(),
    svc: ApiServices = Depends(services),
    seen: Scope = Depends(scope),
) -> list[ShareOut]:
    """The owners' shares of the building's basic charge (a prosumer sees their own)."""
    if building not in {b.id for b in svc.site.buildings}:
        raise HTTPException(404, f"no building {building!r}")
    owners = {c.id for c in svc.site.customers if c.building == building}
    if not seen.everything and not owners & seen.customers:
        raise HTTPException(403, "you own no part of this building")
    try:
        statements = basic_charge_month(svc.site, svc.store, building, period)
    except ValueError as err:
        raise HTTPException(409, str(err)) from err
    return [
        ShareOut(
            owner=s.owner,
            share=s.share,
            days_present=s.days_present,
            peak_kw=s.peak_kw,
            estimated_intervals=s.estimated_intervals,
            amount=float(s.amount),
        )
        for s in statements
        if seen.everything or s.owner in seen.customers
    ]


@router.get("/prices", response_model=list[PriceOut])
def prices_between(
    start: datetime = Query(...),
    end: datetime = Query(...),
    svc: ApiServices = Depends(services),
    who: Principal = Depends(principal),
) -> list[PriceOut]:
    """The market's price changes over a period, as the price synchronising unit keeps them."""
    t0, t1 = span(start, end)
    s = svc.book.schedule(t0, t1)
    return [
        PriceOut(effective_from=datetime.fromtimestamp(t, tz=t0.tzinfo), buy=b, sell=p)
        for t, b, p in zip(s.change_at_s, s.buy, s.sell, strict=True)
    ]


@router.get("/prices/now", response_model=PriceOut)
def price_now(
    svc: ApiServices = Depends(services), who: Principal = Depends(principal)
) -> PriceOut:
    now = svc.clock.now()
    price = svc.book.price_at(now)
    if price is None:
        raise HTTPException(404, f"no market price known for {now.isoformat()}")
    return PriceOut(effective_from=now, buy=price[0], sell=price[1])


def _trading_out(customer: str, svc: ApiServices) -> TradingOut:
    t = svc.trading.get(customer)
    if t is None:
        raise HTTPException(404, f"{customer} does not trade")
    return TradingOut(
        customer=customer,
        windows=[
            WindowIn(purchase=r.purchase, sale=r.sale, from_hour=r.from_hour, to_hour=r.to_hour)
            for r in t.references
        ],
        incentive_per_kwh=t.incentive_per_kwh,
    )


@router.get("/trading/{customer}", response_model=TradingOut)
def trading_get(
    customer: str, svc: ApiServices = Depends(services), seen: Scope = Depends(scope)
) -> TradingOut:
    _customer(svc, customer, seen)
    return _trading_out(customer, svc)


@router.put("/trading/{customer}", response_model=TradingOut)
def trading_put(
    customer: str,
    body: TradingIn,
    who: Principal = Depends(principal),
    svc: ApiServices = Depends(services),
    seen: Scope = Depends(scope),
) -> TradingOut:
    """Set the reference prices (the trading price setting unit)."""
    _customer(svc, customer, seen)
    now = svc.clock.now()
    try:
        refs = [
            ReferencePrices(
                purchase=w.purchase, sale=w.sale, from_hour=w.from_hour, to_hour=w.to_hour
            )
            for w in body.windows
        ]
        svc.trading.set(
            customer, refs, user=who.name, now=now, incentive_per_kwh=body.incentive_per_kwh
        )
    except (ValueError, TradingError) as err:
        raise HTTPException(422, str(err)) from err
    return _trading_out(customer, svc)


@router.delete("/trading/{customer}", status_code=204)
def trading_delete(
    customer: str,
    who: Principal = Depends(principal),
    svc: ApiServices = Depends(services),
    seen: Scope = Depends(scope),
) -> None:
    _customer(svc, customer, seen)
    now = svc.clock.now()
    try:
        svc.trading.clear(customer, user=who.name, now=now)
    except TradingError as err:
        raise HTTPException(422, str(err)) from err


@router.get("/trading/{customer}/accounts", response_model=AccountsOut)
def trading_accounts_of(
    customer: str,
    start: datetime = Query(...),
    end: datetime = Query(...),
    svc: ApiServices = Depends(services),
    seen: Scope = Depends(scope),
) -> AccountsOut:
    """Purchases, sales and incentives from the customer's smart meter at market prices."""
    _customer(svc, customer, seen)
    t0, t1 = span(start, end)
    try:
        meter = meter_of(svc.site, customer)
    except TradingError as err:
        raise HTTPException(422, str(err)) from err
    t = svc.trading.get(customer)
    r = trading_accounts(
        ValidatedReadings(svc.store, svc.site.site.id),
        svc.book,
        meter,
        t0,
        t1,
        incentive_per_kwh=t.incentive_per_kwh if t else 0.0,
    )
    return AccountsOut(
        customer=customer,
        start=t0,
        end=t1,
        **r.accounts.floats(),
        import_kwh=r.import_kwh,
        export_kwh=r.export_kwh,
        missing_intervals=r.missing_intervals,
    )


@router.get("/revenue", response_model=list[RevenueOut])
def revenue_of(
    start: datetime = Query(...),
    end: datetime = Query(...),
    by: str = Query("day", pattern="^(interval|hour|day|month)$"),
    device: list[str] = Query([], max_length=200),
    svc: ApiServices = Depends(services),
    seen: Scope = Depends(scope),
) -> list[RevenueOut]:
    """What each power device earned (the energy revenue calculating system)."""
    t0, t1 = span(start, end)
    metered = revenue_devices(svc.site)
    known = [d for d in metered if seen.sees_device(d)]
    for d in device:
        if d not in metered:
            raise HTTPException(404, f"no power device with a meter of its own: {d!r}")
        seen.device(d)
    chosen = device or known
    if not chosen:
        return []
    validated = ValidatedReadings(svc.store, svc.site.site.id)
    table = CentralRevenueCalculator(chosen, validated, svc.book).table(t0, t1)
    periods = table.by_period(by, svc.site.site.timezone)
    totals = table.totals()
    return [
        RevenueOut(
            device=d,
            out_kwh=float(totals.loc[d, "out_kwh"]),
            in_kwh=float(totals.loc[d, "in_kwh"]),
            revenue=float(totals.loc[d, "revenue"]),
            periods={str(k): float(v) for k, v in periods[d].items()},
        )
        for d in chosen
    ]


@router.get("/market/settlement", response_model=list[SettlementOut])
def market_settlement_of(
    start: datetime = Query(...),
    end: datetime = Query(...),
    svc: ApiServices = Depends(services),
    seen: Scope = Depends(scope),
) -> list[SettlementOut]:
    """The local market's clearing per interval and prosumer, in real time on the readings as
    they came (the money is settled per local day: ``/market/settled-days``)."""
    t0, t1 = span(start, end)
    rows = svc.local_market.settlement(t0, t1)
    return [
        SettlementOut(
            interval_start=r.interval_start.to_pydatetime(),
            customer=r.customer,
            clearing_price=None if r.clearing_price != r.clearing_price else r.clearing_price,
            local_kwh=r.local_kwh,
            utility_kwh=r.utility_kwh,
            money=r.money,
        )
        for r in rows.itertuples()
        if seen.everything or r.customer in seen.customers
    ]


@router.get("/market/settled-days", response_model=list[DaySettlementOut])
def market_settled_days_of(
    start: datetime = Query(...),
    end: datetime = Query(...),
    svc: ApiServices = Depends(services),
    seen: Scope = Depends(scope),
) -> list[DaySettlementOut]:
    """The local days (midnight in the period, the site's time zone) settled on the validated
    series, the newest revision per prosumer; a day VEE has not validated is not there."""
    t0, t1 = span(start, end)
    settlement = site_settlement(svc.store, svc.site, svc.book)
    days = local_days(t0, t1, svc.site.site.timezone)
    rows = settlement.latest([d.isoformat() for d in days])
    return [
        DaySettlementOut(
            day=r.day,
            customer=r.customer,
            revision=int(r.revision),
            position_kwh=float(r.position_kwh),
            local_kwh=float(r.local_kwh),
            utility_kwh=float(r.utility_kwh),
            money=int(r.money_cents) / 100,
            difference=int(r.difference_cents) / 100,
        )
        for r in rows.itertuples()
        if seen.everything or r.customer in seen.customers
    ]
