"""Trading in the live MEG, in simulated time: market prices pushed on the bus and kept by the
price synchronising unit, the prosumer's battery charging and discharging in exactly the
intervals the references select, the accounting server's month from the smart meter's history,
and trading holding with an alarm while the price server cannot be reached."""

from datetime import UTC, date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

import numpy as np
import pandas as pd
import pytest

from openmeg.core.bus import Bus
from openmeg.core.messages import AlarmMessage, MarketPrices, TradingAccounts
from openmeg.core.site import Controller, Site, load_site
from openmeg.core.store import Store
from openmeg.customer.revenue_calc import CentralRevenueCalculator
from openmeg.customer.trading import ReferencePrices
from openmeg.customer.trading_desk import trading_accounts
from openmeg.market.price_server import price_app
from tests.field_harness import LiveSite, live_site
from tests.services import free_port, http_server

T0 = datetime(2026, 5, 31, 22, 0, tzinfo=UTC)  # midnight of 1 June in Rome: no sun
#            interval: 0     1     2     3     4     5     6     7     8     9     10    11
BUY = np.array([0.10, 0.10, 0.05, 0.06, 0.10, 0.10, 0.25, 0.23, 0.10, 0.07, 0.10, 0.10])
SELL = BUY - 0.03  # interval 7 sells at exactly 0.20, interval 3 buys at exactly 0.06
CHARGE, DISCHARGE = {2, 3}, {6, 7}  # purchase reference 0.06, sale reference 0.20


START = T0 - timedelta(minutes=1)  # the head-end sees the boundary at T0 pass


def _prices() -> pd.DataFrame:
    """The twelve intervals from T0, after one more at 0.10 before them."""
    idx = pd.date_range(T0 - timedelta(minutes=15), periods=BUY.size + 1, freq="15min")
    buy = np.concatenate(([0.10], BUY))
    return pd.DataFrame({"interval_start": idx, "buy": buy, "sell": (buy - 0.03).round(5)})


def _site_without_self_consumption() -> Site:
    """The demo with its batteries left to trading alone, so that idle means idle."""
    site = load_site("demo")
    controllers = tuple(
        Controller(kind=c.kind, priority=c.priority, enabled=c.kind != "self_consumption")
        for c in site.controllers
    )
    return site.model_copy(update={"controllers": controllers})


async def _live(bus: Bus, store: Store, **kw: Any) -> LiveSite:
    return await live_site(
        bus,
        store,
        start=START,
        site=_site_without_self_consumption(),
        step_s=60.0,
        persist_every_s=600.0,
        horizon_h=4.0,
        **kw,
    )


def _battery_kw(live: LiveSite, battery: str, minutes: int) -> np.ndarray:
    """The battery's power in each minute from T0, as the field's physics had it."""
    e = live.field.plant._engine
    i = e.plant.bat_ids.index(battery)
    k0 = e.plant.index.get_loc(T0)
    return np.asarray(e.out.bat[i, k0 : k0 + minutes])


async def test_battery_trades_in_exactly_the_selected_intervals(bus: Bus, store: Store) -> None:
    market = await bus.subscribe("meg/demo/market/prices")
    accounts = await bus.subscribe("meg/demo/customer/h01/trading")
    live = await _live(bus, store, market_prices=_prices())
    meg = live.meg
    meg.trading.set("h01", [ReferencePrices(purchase=0.06, sale=0.20)], user="h01", now=T0)
    try:
        await live.step(182)  # 03:00 of trading, then the last read
    finally:
        await live.stop()

    _, first = await market.get(timeout=5)
    assert isinstance(first, MarketPrices)
    assert first.changes[0].effective_from == T0 - timedelta(minutes=15)
    assert [c.buy for c in first.changes] == pytest.approx(
        [0.10, 0.05, 0.06, 0.10, 0.25, 0.23, 0.10, 0.07, 0.10]
    )

    p = _battery_kw(live, "bess-h01", 180).reshape(12, 15)
    for interval in range(12):
        want = -5.0 if interval in CHARGE else 5.0 if interval in DISCHARGE else 0.0
        assert p[interval] == pytest.approx(np.full(15, want), abs=1e-9), interval
    # a battery whose owner set no references does not trade
    assert _battery_kw(live, "bess-h05", 180) == pytest.approx(np.zeros(180), abs=1e-9)

    # the accounting server, from the smart meter's 15-minute history in the MDMS
    report = trading_accounts(meg.readings, meg.book, "m-h01", T0, T0 + timedelta(hours=3))
    assert report.intervals == 12 and report.missing_intervals == 0
    # computed here from the plant's own minutes: m-h01 is load, PV (dark) and the battery
    e = live.field.plant._engine
    k0 = e.plant.index.get_loc(T0)
    load = np.asarray(e.out.load[e.plant.load_ids.index("load-h01"), k0 : k0 + 180])
    net_kw = load - _battery_kw(live, "bess-h01", 180)
    imp = np.clip(net_kw, 0, None).reshape(12, 15).sum(axis=1) / 60
    exp = np.clip(-net_kw, 0, None).reshape(12, 15).sum(axis=1) / 60
    assert exp[list(DISCHARGE)].min() > 4.0 * 0.25  # the house sells what its load leaves

    def cents(x: float) -> Decimal:
        return Decimal(repr(float(x))).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)

    assert report.accounts.purchases == cents(float(imp @ BUY))
    assert report.accounts.sales == cents(float(exp @ SELL))
    assert report.import_kwh == pytest.approx(float(imp.sum()), abs=0.002)

    # and continuously: the month so far, after each quarter hour
    last = None
    while accounts.pending():
        _, msg = await accounts.get()
        last = msg
    assert isinstance(last, TradingAccounts)
    assert (last.purchases, last.sales) == (
        float(report.accounts.purchases),
        float(report.accounts.sales),
    )
    # the battery's own meter (SunSpec 203 on the wire) and the revenue it earned:
    # 2 x 1.25 kWh bought at 0.05 and 0.06, 2 x 1.25 kWh sold at 0.22 and 0.20
    table = CentralRevenueCalculator(["bess-h01"], meg.readings, meg.book).table(
        T0, T0 + timedelta(hours=3)
    )
    assert table.in_kwh[0].sum() == pytest.approx(2.5, abs=0.002)
    assert table.out_kwh[0].sum() == pytest.approx(2.5, abs=0.002)
    assert table.totals()["revenue"].iloc[0] == pytest.approx(
        1.25 * (0.22 + 0.20) - 1.25 * (0.05 + 0.06), abs=0.001
    )
    # the local market cleared every interval: energy balances locally, h01 at its limits
    settled = meg.local_market.settlement(T0, T0 + timedelta(hours=3))
    per_interval = settled.groupby("interval_start")
    assert per_interval.ngroups == 12
    assert per_interval.local_kwh.sum().abs().max() < 1e-9
    h01 = settled[settled.customer == "h01"].set_index("interval_start")
    sold = h01.local_kwh[h01.local_kwh < 0]
    assert (
        len(sold) > 0
        and (sold.index.isin([T0 + timedelta(minutes=15 * i) for i in DISCHARGE])).all()
    )
    # and its money waits for the validated series: the local day has not closed
    day = meg.economics.settlement
    assert day.latest(["2026-06-01"]).empty
    assert day.state(date(2026, 6, 1)).waiting["h01"] == (
        "m-h01 import: not validated yet (openmeg vee run, or the automatic VEE)"
    )
    events = store.events("demo", kind="config")
    assert [e["code"] for e in events] == ["trading_references"]


async def test_unreachable_price_server_holds_trading_with_an_alarm(bus: Bus, store: Store) -> None:
    port = free_port()  # nothing answers here yet
    alarms = await bus.subscribe("meg/demo/operation/alarms/trading")
    live = await _live(bus, store, price_url=f"http://127.0.0.1:{port}")
    meg = live.meg
    meg.trading.set("h01", [ReferencePrices(purchase=0.06, sale=0.20)], user="h01", now=T0)
    try:
        # intervals 0-3 without a price server: interval 2 and 3 would have charged
        await live.step(61)
        assert _battery_kw(live, "bess-h01", 60) == pytest.approx(np.zeros(60), abs=1e-9)
        _, raised = await alarms.get(timeout=5)
        assert isinstance(raised, AlarmMessage) and raised.active
        assert "gave no prices" in raised.text and "trading holds" in raised.text
        assert raised.ts == T0  # after 30 s of holding, at the next cycle
        assert meg.book.last_change() is None  # nothing was traded on, nothing stored

        with http_server(price_app(_prices(), live.clock), port=port):
            await live.step(61)  # intervals 4-7 (the field steps the last minute after it)
        p = _battery_kw(live, "bess-h01", 120).reshape(8, 15)
    finally:
        await live.stop()
    _, cleared = await alarms.get(timeout=5)
    assert isinstance(cleared, AlarmMessage) and not cleared.active
    assert cleared.ts == T0 + timedelta(minutes=60)
    assert p[4:6] == pytest.approx(np.zeros((2, 15)), abs=1e-9)
    assert p[6:8] == pytest.approx(np.full((2, 15), 5.0), abs=1e-9)
    kinds = [e["kind"] for e in store.events("demo") if e["source"] == "trading"]
    assert kinds == ["alarm", "alarm_clear"]
