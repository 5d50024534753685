"""Prosumer economics in the live MEG (Y.2071 clause 10.1, Appendix III): market prices in
(from a price server over HTTP, or an embedded market publishing on the bus), kept by the price
synchronising unit; the trading desk deciding each interval and holding, with an alarm, when
prices cannot be had; the accounting server after each interval; the local market clearing
each interval's metered positions, and settling its money per local day on the validated
series once VEE has validated the day (again when late readings change it); the time
synchronous unit now and then.

The time, the prices and the desk's decision are taken at each tick (``before_cycle``: in
lockstep before each control cycle, as a task at each beat of the cycle); the accounts and the
local market work on the readings the MDMS announces it stored (``after_intervals``); the
settlement of the closed local days is looked at every ``settle_every_s`` of the MEG's time."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Sequence
from datetime import datetime
from functools import partial

import pandas as pd

from openmeg.core.audit import AuditLog
from openmeg.core.bus import Bus, Subscription, bursts, cycle_beats, waiting
from openmeg.core.clock import Clock
from openmeg.core.edge import Edge, Refused, check_site
from openmeg.core.messages import (
    BusMessage,
    TradingAccounts,
    stored_readings_topic,
    trading_accounts_topic,
)
from openmeg.core.messages import MeterReadings as MeterReadingsMessage
from openmeg.core.site import Site
from openmeg.core.store import Store
from openmeg.customer.price_book import BusPriceSync, HttpPriceSync, PriceBook, PriceSourceError
from openmeg.customer.revenue_calc import revenue_devices
from openmeg.customer.time_sync import TimeSync
from openmeg.customer.trading_desk import (
    TradingDesk,
    TradingSettings,
    meter_of,
    month_start,
    trading_accounts,
)
from openmeg.market.feed import MarketPriceFeed
from openmeg.market.local_market import LocalMarket, MarketError, PositionError
from openmeg.market.prices import synthetic_prices
from openmeg.market.settlement_run import site_settlement
from openmeg.operation.alarms import announce_alarm
from openmeg.operation.mdms.store import MeterReadings
from openmeg.operation.mdms.validated import ValidatedReadings


class ProsumerEconomics:
    def __init__(
        self,
        site: Site,
        *,
        clock: Clock,
        bus: Bus,
        store: Store,
        audit: AuditLog,
        market_bus: Bus | None = None,
        market_prices: pd.DataFrame | None = None,
        price_url: str | None = None,
        price_hold_alarm_s: float = 30.0,
        time_sync: TimeSync | None = None,
        time_sync_every_s: float = 64.0,
        edge: Edge | None = None,
        settle_every_s: float = 900.0,
        settle_lookback_days: int = 35,
    ) -> None:
        """Market prices: from a price server at ``price_url`` (HTTP), or else published on the
        bus by an embedded market from ``market_prices`` (``interval_start, buy, sell``;
        default: seeded synthetic prices for a year from the start; on ``market_bus`` if given).
        ``time_sync``: asked every ``time_sync_every_s`` of the MEG's time. ``edge``: where
        refused inputs are counted (the prices at ``price_book``, stored readings at
        ``prosumer_economics``). ``settle_every_s``: how often (MEG time) the closed local days
        of the last ``settle_lookback_days`` are settled where VEE validated them."""
        self.site, self.clock, self.bus, self.store = site, clock, bus, store
        edge = edge or Edge(site.site.id, bus, clock)
        self.gate = edge.gate("prosumer_economics")
        self.readings = MeterReadings(store)
        self.validated = ValidatedReadings(store, site.site.id)
        self.book = PriceBook(
            store, site.site.id, max_abs_per_kwh=site.input_limits.max_abs_price_per_kwh
        )
        self.trading = TradingSettings(store, site, audit=audit)
        self.desk = TradingDesk(site=site, settings=self.trading, book=self.book)
        self.local_market = LocalMarket(
            store, site.site.id, {m.customer for m in site.meters if m.parent is None}
        )
        self.settlement = site_settlement(store, site, self.book, self.validated)
        self.settle_every_s, self.settle_lookback_days = settle_every_s, settle_lookback_days
        self._settled_at: datetime | None = None
        self.market: MarketPriceFeed | None = None
        self.http_prices: HttpPriceSync | None = None
        self.bus_prices: BusPriceSync | None = None
        if price_url is not None:
            self.http_prices = HttpPriceSync(self.book, price_url)
        else:
            if market_prices is None:
                day = pd.Timestamp(clock.now()).floor("D")
                market_prices = synthetic_prices(day, 366, seed=0, timezone=site.site.timezone)
            self.market = MarketPriceFeed(site.site.id, market_bus or bus, market_prices)
            self.bus_prices = BusPriceSync(self.book, bus, edge.gate("price_book"))
        self._price_problem = ""
        self._price_interval: pd.Timestamp | None = None
        self._holding_since: datetime | None = None
        self._hold_alarm = False
        self.price_hold_alarm_s = price_hold_alarm_s
        self.time_sync, self.time_sync_every_s = time_sync, time_sync_every_s
        self._synced_at: datetime | None = None
        self._time_alarm = ""
        self._stored: Subscription | None = None
        self._meters = {m.id for m in site.meters} | set(revenue_devices(site))

    async def start(self) -> None:
        if self.bus_prices is not None:
            await self.bus_prices.start()
        self._stored = await self.bus.subscribe(stored_readings_topic(self.site.site.id, "+"))

    async def stop(self) -> None:
        if self.bus_prices is not None:
            await self.bus_prices.stop()
        if self._stored is not None:
            await self.bus.unsubscribe(self._stored)
            self._stored = None

    async def before_cycle(self, now: datetime | None = None) -> None:
        """The time and the prices, and the trading desk's decision, at ``now`` (the clock's
        time by default): before the cycle runs."""
        now = now or self.clock.now()
        await self._synchronise(now)
        await self._trade(now)
        await self._settle(now)

    async def _settle(self, now: datetime) -> None:
        """Now and then: settle the closed local days VEE validated since (or again)."""
        if self._settled_at is not None and (
            (now - self._settled_at).total_seconds() < self.settle_every_s
        ):
            return
        await self.settle_closed_days(now)

    async def settle_closed_days(self, now: datetime | None = None) -> None:
        """Settle at once the closed local days VEE has validated at ``now`` (the clock's time
        by default): at each look and when a run ends, after VEE took what was waiting."""
        now = now or self.clock.now()
        self._settled_at = now
        days = self.settlement.closed_days(now, self.settle_lookback_days)
        await self.store.in_thread(partial(self.settlement.settle_days, days, now=now))

    async def pump(self) -> None:
        """The readings the MDMS stored, waiting on the bus: the accounts, the local market."""
        await self._closed(waiting(self._stored))

    async def run(self, stop: asyncio.Event) -> None:
        """Until ``stop`` is set: a tick at each beat of the control cycle, and the accounts and
        the local market on each burst of stored readings."""
        async with asyncio.TaskGroup() as tasks:
            tasks.create_task(self._ticks(stop))
            if self._stored is not None:
                async for burst in bursts(self._stored, stop):
                    await self._closed(burst)

    async def _ticks(self, stop: asyncio.Event) -> None:
        async with contextlib.aclosing(cycle_beats(self.bus, self.site.site.id, stop)) as beats:
            async for ts in beats:
                await self.gate.protect("tick", partial(self.before_cycle, ts))

    async def _closed(self, items: Sequence[tuple[str, BusMessage]]) -> None:
        """The stored readings of a burst that pass the edge: the accounts, the local market."""
        taken: list[MeterReadingsMessage] = []

        async def take(msg: BusMessage) -> None:
            if not isinstance(msg, MeterReadingsMessage):
                raise Refused("not_readings", f"a {msg.type} message where readings belong")
            check_site(msg, self.site.site.id)
            if msg.meter not in self._meters:
                raise Refused("unknown_meter", f"{msg.meter!r} is no meter of this site")
            top = self.site.meter_max_kw() * 0.25
            if any(r.value_kwh > top for r in msg.readings):
                raise Refused("reading_too_large", f"an interval above {top:g} kWh")
            taken.append(msg)

        for topic, msg in items:
            await self.gate.handle(topic, msg, take)
        if taken:
            await self.gate.protect("accounts", lambda: self.after_intervals(taken))

    async def after_intervals(self, closed: list[MeterReadingsMessage]) -> None:
        """Meters closed intervals: the accounts and the local market."""
        if closed:
            await self._account({batch.meter for batch in closed})
            self._clear_local_market(closed)

    def _clear_local_market(self, closed: list[MeterReadingsMessage]) -> None:
        """Each closed interval: prosumers' metered positions cleared on the local market."""
        customer_of = {m.id: m.customer for m in self.site.meters if m.parent is None}
        positions: dict[datetime, dict[str, float]] = {}
        for batch in closed:
            customer = customer_of.get(batch.meter)
            if customer is None:
                continue
            sign = 1.0 if batch.channel == "import" else -1.0
            for r in batch.readings:
                book = positions.setdefault(r.interval_start, {})
                book[customer] = book.get(customer, 0.0) + sign * r.value_kwh
        trading = self.trading.all()
        for start, pos in sorted(positions.items()):
            prices = self.book.interval_prices(pd.DatetimeIndex([start]))
            if not prices.priced[0]:
                continue  # no price for the interval: nothing is settled on guesses
            buy, sell = float(prices.buy[0]), float(prices.sell[0])
            hour = pd.Timestamp(start).tz_convert(self.site.site.timezone).hour
            limits = {
                c: (r.purchase, r.sale)
                for c, t in trading.items()
                for r in t.references
                if r.from_hour <= hour < r.to_hour
            }
            try:
                self.local_market.clear_interval(start, pos, buy=buy, sell=sell, limits=limits)
            except PositionError as err:
                raise Refused("position_invalid", str(err)) from err
            except MarketError:
                pass  # settled already (after a restart)

    async def _synchronise(self, now: datetime) -> None:
        """Ask the time server now and then; raise or clear the time alarm."""
        if self.time_sync is None or (
            self._synced_at is not None
            and (now - self._synced_at).total_seconds() < self.time_sync_every_s
        ):
            return
        self._synced_at = now
        result = await asyncio.to_thread(self.time_sync.sync)
        if result.alarm == self._time_alarm:
            return
        active = bool(result.alarm)
        await announce_alarm(
            self.bus,
            self.store,
            site=self.site.site.id,
            source="time",
            code="time_sync",
            text=result.alarm or "the clock is on the time server's time",
            active=active,
            ts=now,
            severity="warning",
        )
        self._time_alarm = result.alarm

    async def _trade(self, now: datetime) -> None:
        """Market prices in, the price monitoring decides, an alarm while trading holds."""
        if self.market is not None:
            await self.market.update(now)
        if self.bus_prices is not None:
            await self.bus_prices.pump(now)
        interval = pd.Timestamp(now).floor("15min")
        if self.http_prices is not None and (
            interval != self._price_interval or self._price_problem
        ):
            self._price_interval = interval
            try:
                await self.http_prices.sync(now)
                self._price_problem = ""
            except PriceSourceError as err:
                self._price_problem = str(err)
        self.desk.update(now, problem=self._price_problem)
        holding = bool(self.desk.holding) and bool(self.desk.trading)
        if not holding:
            self._holding_since = None
        elif self._holding_since is None:
            self._holding_since = now
        overdue = (
            self._holding_since is not None
            and (now - self._holding_since).total_seconds() >= self.price_hold_alarm_s
        )
        if overdue != self._hold_alarm:
            self._hold_alarm = overdue
            await announce_alarm(
                self.bus,
                self.store,
                site=self.site.site.id,
                source="trading",
                code="trading_holds",
                text=self.desk.holding or "market prices are back: trading resumes",
                active=overdue,
                ts=now,
                severity="warning",
            )

    async def _account(self, meters: set[str]) -> None:
        """The accounting server, continuously: the month so far of each trading prosumer
        whose meter closed an interval."""
        for customer, t in self.trading.all().items():
            meter = meter_of(self.site, customer)
            if meter not in meters:
                continue
            now = self.clock.now()
            since = month_start(now, self.site.site.timezone)
            report = trading_accounts(
                self.validated,
                self.book,
                meter,
                since,
                now,
                incentive_per_kwh=t.incentive_per_kwh,
            )
            a = report.accounts
            await self.bus.publish(
                trading_accounts_topic(self.site.site.id, customer),
                TradingAccounts(
                    site=self.site.site.id,
                    customer=customer,
                    ts=now,
                    since=since,
                    **a.floats(),
                ),
            )
