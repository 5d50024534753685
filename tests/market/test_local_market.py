"""The local P2P market per interval on the store: orders derived from metered positions and
reference prices, orders entered ahead, one uniform price, settlement with the utility, once."""

from datetime import UTC, datetime, timedelta

import pytest

from openmeg.core.site import load_site
from openmeg.core.store import Store
from openmeg.market.clearing import BID, OFFER
from openmeg.market.local_market import (
    LocalMarket,
    MarketError,
    Order,
    PositionError,
    settlement_totals,
    site_market,
)

T = datetime(2026, 6, 1, 16, 0, tzinfo=UTC)
POSITIONS = {"h01": -2.0, "h03": -1.0, "h02": 1.5, "h04": 2.0}  # kWh, import positive


def _market(store: Store) -> LocalMarket:
    return LocalMarket(store, "demo", {"h01", "h02", "h03", "h04"})


def _money(result_rows: object) -> dict[str, float]:
    return dict(zip(result_rows.customer, result_rows.money, strict=True))  # type: ignore[attr-defined]


def test_positions_at_market_prices_clear_at_the_midpoint(store: Store) -> None:
    market = _market(store)
    r = market.clear_interval(T, POSITIONS, buy=0.30, sell=0.05)
    assert r.clearing.price == pytest.approx(0.175) and r.clearing.volume_kwh == pytest.approx(3.0)
    assert _money(r.rows) == pytest.approx(
        {"h01": -0.35, "h03": -0.175, "h02": 0.2625, "h04": 0.2625 + 0.5 * 0.30}
    )
    assert r.rows.local_kwh.sum() == pytest.approx(0.0)  # energy balances locally
    assert r.rows.money.sum() == pytest.approx(0.5 * 0.30)  # the utility sold the residual
    stored = market.settlement(T)
    assert stored.customer.tolist() == ["h01", "h02", "h03", "h04"]
    assert stored.clearing_price.unique().tolist() == [pytest.approx(0.175)]
    with pytest.raises(MarketError, match="settled already"):
        market.clear_interval(T, POSITIONS, buy=0.30, sell=0.05)


def test_reference_prices_set_the_limits(store: Store) -> None:
    r = _market(store).clear_interval(
        T, POSITIONS, buy=0.30, sell=0.05, limits={"h01": (0.06, 0.20)}
    )
    # offers: h03 at 0.05 (1.0), h01 at 0.20 (2.0); both bids at 0.30: the marginal pair is
    # h04's bid and h01's offer
    assert r.clearing.price == pytest.approx(0.25)
    assert _money(r.rows)["h01"] == pytest.approx(-0.50)


def test_an_entered_order_replaces_the_derived_one(store: Store) -> None:
    market = _market(store)
    market.enter(
        T, Order(customer="h03", side=OFFER, price=0.40, quantity_kwh=1.0), now=T - timedelta(1)
    )
    r = market.clear_interval(T, POSITIONS, buy=0.30, sell=0.05)
    assert r.clearing.volume_kwh == pytest.approx(2.0)  # h03 asks more than anyone bids
    assert r.clearing.price == pytest.approx(0.175)
    rows = r.rows.set_index("customer")
    assert rows.loc["h03", "utility_kwh"] == pytest.approx(-1.0)
    assert rows.loc["h03", "money"] == pytest.approx(-0.05)


@pytest.mark.parametrize(
    ("order", "when", "message"),
    [
        (dict(customer="h09", side=BID, price=0.1, quantity_kwh=1.0), T, "unknown customer"),
        (
            dict(customer="h01", side=BID, price=0.1, quantity_kwh=1.0),
            T + timedelta(minutes=5),
            "15-minute interval",
        ),
        (
            dict(customer="h01", side=BID, price=0.1, quantity_kwh=1.0),
            T - timedelta(minutes=15),
            "has begun",
        ),
    ],
)
def test_bad_orders_are_refused_and_store_nothing(
    store: Store, order: dict[str, object], when: datetime, message: str
) -> None:
    market = _market(store)
    with pytest.raises(MarketError, match=message):
        market.enter(when, Order(**order), now=T - timedelta(minutes=1))  # type: ignore[arg-type]
    assert market.entered(when) == []


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        (dict(side=BID, price=float("nan"), quantity_kwh=1.0), "finite number"),
        (dict(side=BID, price=0.1, quantity_kwh=-1.0), "must be positive"),
        (dict(side=0, price=0.1, quantity_kwh=1.0), "bid \\(\\+1\\) or an offer"),
        (dict(side=BID, price="0.1", quantity_kwh=1.0), "finite number"),
    ],
)
def test_malformed_orders(fields: dict[str, object], message: str) -> None:
    with pytest.raises(MarketError, match=message):
        Order(customer="h01", **fields)  # type: ignore[arg-type]


def test_settlements_sum_per_customer(store: Store) -> None:
    market = _market(store)
    market.clear_interval(T, POSITIONS, buy=0.30, sell=0.05)
    market.clear_interval(T + timedelta(minutes=15), POSITIONS, buy=0.30, sell=0.05)
    rows = market.settlement(T, T + timedelta(hours=1))
    totals = settlement_totals(rows)
    assert list(totals.columns) == ["local_kwh", "utility_kwh", "money"]
    assert totals.money.to_dict() == pytest.approx(
        {"h01": -0.70, "h02": 0.525, "h03": -0.35, "h04": 2 * (0.2625 + 0.5 * 0.30)}
    )


def test_the_site_market_is_open_to_every_main_meter(store: Store) -> None:
    site = load_site("demo")
    market = site_market(store, site)
    assert market.customers == {m.customer for m in site.meters if m.parent is None}


@pytest.mark.parametrize(
    ("positions", "buy"),
    [
        ({**POSITIONS, "h02": float("nan")}, 0.30),
        ({**POSITIONS, "h01": float("-inf")}, 0.30),
        (POSITIONS, float("inf")),
    ],
)
def test_positions_or_prices_that_are_not_numbers_clear_nothing(
    store: Store, positions: dict[str, float], buy: float
) -> None:
    market = _market(store)
    with pytest.raises(PositionError, match="every one must be a finite number"):
        market.clear_interval(T, positions, buy=buy, sell=0.05)
    assert market.settlement(T).empty
    assert market.clear_interval(T, POSITIONS, buy=0.30, sell=0.05).rows.size  # then it clears
