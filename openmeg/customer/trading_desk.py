"""The power trading system live (Y.2071 Appendix III.1, steps 1-10).

- ``TradingSettings``, the trading price setting unit: each prosumer's reference prices, kept in
  the store, with an event in the log for every change (the calls an API serves).
- ``TradingDesk``, price monitoring and the inverter and storage controller: each interval it
  compares the market's prices with the references and asks the prosumer's storage to charge
  from or discharge to the grid; without a price it holds and says why.
- ``PriceTrading``, the desk's requests as a controller of the control cycle, so that the site's
  controller priorities and the devices' limits apply.
- ``trading_accounts``, the accounting server: purchases, sales and incentives from the smart
  meter's history of energy in and out and the prices stored by the price synchronising unit.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd
import sqlalchemy as sa

from openmeg.core.audit import AuditLog
from openmeg.core.errors import OpenMegError
from openmeg.core.site import Site
from openmeg.core.store import Store, as_utc, metadata
from openmeg.customer.price_book import PriceBook
from openmeg.customer.trading import Accounts, ReferencePrices, accounting, trading_requests
from openmeg.der.ratings import Battery
from openmeg.operation.cycle import ProcessImage
from openmeg.operation.mdms.store import INTERVAL
from openmeg.operation.mdms.validated import IntervalSeries, ValidatedReadings

trading_references = sa.Table(
    "trading_references",
    metadata,
    sa.Column("site", sa.String(64), nullable=False),
    sa.Column("customer", sa.String(64), nullable=False),
    sa.Column("from_hour", sa.Integer, nullable=False),
    sa.Column("to_hour", sa.Integer, nullable=False),
    sa.Column("purchase", sa.Float, nullable=False),
    sa.Column("sale", sa.Float, nullable=False),
    sa.Column("incentive_per_kwh", sa.Float, nullable=False),
    sa.Column("set_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("set_by", sa.String(128), nullable=False),
    sa.PrimaryKeyConstraint("site", "customer", "from_hour"),
)


class TradingError(OpenMegError):
    """A trading request was refused; nothing was changed."""


def storage_of(site: Site, customer: str) -> list[Battery]:
    """The batteries a customer owns."""
    return [b for b in site.devices_of("battery") if b.owner == customer]


def meter_of(site: Site, customer: str) -> str:
    """The customer's own (top-level) meter."""
    for m in site.meters:
        if m.customer == customer and m.parent is None:
            return m.id
    raise TradingError(f"customer {customer!r} has no meter of their own")


@dataclass(frozen=True, kw_only=True)
class CustomerTrading:
    customer: str
    references: tuple[ReferencePrices, ...]
    incentive_per_kwh: float = 0.0


class TradingSettings:
    """Reference prices per prosumer, in the store."""

    def __init__(self, store: Store, site: Site, *, audit: AuditLog | None = None) -> None:
        """``audit``: where changes are recorded (without it, the settings may only be read)."""
        self.store, self.site, self.audit = store, site, audit
        trading_references.create(store.engine, checkfirst=True)

    def _customer(self, customer: str) -> None:
        known = {c.id for c in self.site.customers}
        if customer not in known:
            raise TradingError(f"unknown customer {customer!r}")
        if not storage_of(self.site, customer):
            raise TradingError(f"customer {customer!r} has no storage to trade with")
        meter_of(self.site, customer)

    def set(
        self,
        customer: str,
        references: list[ReferencePrices],
        *,
        user: str,
        now: datetime,
        incentive_per_kwh: float = 0.0,
    ) -> CustomerTrading:
        """Replace a prosumer's reference prices (windows must not overlap)."""
        self._customer(customer)
        if not references:
            raise TradingError("give at least one pair of reference prices")
        if not incentive_per_kwh >= 0 or incentive_per_kwh == float("inf"):
            raise TradingError(f"the incentive must be a number >= 0, got {incentive_per_kwh}")
        hours = np.zeros(24, dtype=int)
        for r in references:
            hours[r.from_hour : r.to_hour] += 1
        if (hours > 1).any():
            raise TradingError(f"time windows overlap at hour {int(np.argmax(hours > 1))}")
        rows = [
            {
                "site": self.site.site.id,
                "customer": customer,
                "from_hour": r.from_hour,
                "to_hour": r.to_hour,
                "purchase": r.purchase,
                "sale": r.sale,
                "incentive_per_kwh": incentive_per_kwh,
                "set_at": as_utc(now),
                "set_by": user,
            }
            for r in references
        ]
        with self.store.engine.begin() as conn:
            conn.execute(self._rows_of(customer, trading_references.delete()))
            conn.execute(trading_references.insert(), rows)
        windows = ", ".join(
            f"{r.from_hour:02d}-{r.to_hour:02d} h buy <= {r.purchase:g} sell >= {r.sale:g}"
            for r in references
        )
        self._log(customer, f"{user} set {windows}", now, user)
        return CustomerTrading(
            customer=customer, references=tuple(references), incentive_per_kwh=incentive_per_kwh
        )

    def clear(self, customer: str, *, user: str, now: datetime) -> None:
        """Stop trading for a prosumer."""
        self._customer(customer)
        with self.store.engine.begin() as conn:
            conn.execute(self._rows_of(customer, trading_references.delete()))
        self._log(customer, f"{user} stopped trading", now, user)

    def _log(self, customer: str, text: str, now: datetime, user: str) -> None:
        """Every change of the references goes into the event log and the audit log."""
        if self.audit is None:
            raise TradingError("these trading settings were opened to read: give the audit log")
        self.audit.append(
            ts=now,
            actor=user,
            action="config",
            target=f"trading/{customer}",
            detail={"change": text},
        )
        self.store.add_event(
            ts=now,
            site=self.site.site.id,
            kind="config",
            source=f"trading/{customer}",
            code="trading_references",
            text=text,
        )

    def all(self) -> dict[str, CustomerTrading]:
        t = trading_references.c
        q = sa.select(trading_references).where(t.site == self.site.site.id).order_by(t.from_hour)
        with self.store.engine.connect() as conn:
            rows = conn.execute(q).all()
        refs: dict[str, list[ReferencePrices]] = {}
        incentive: dict[str, float] = {}
        for r in rows:
            refs.setdefault(r.customer, []).append(
                ReferencePrices(
                    purchase=r.purchase, sale=r.sale, from_hour=r.from_hour, to_hour=r.to_hour
                )
            )
            incentive[r.customer] = r.incentive_per_kwh
        return {
            c: CustomerTrading(customer=c, references=tuple(v), incentive_per_kwh=incentive[c])
            for c, v in refs.items()
        }

    def get(self, customer: str) -> CustomerTrading | None:
        return self.all().get(customer)

    def _rows_of(self, customer: str, stmt: Any) -> Any:
        t = trading_references.c
        return stmt.where(t.site == self.site.site.id, t.customer == customer)


@dataclass(kw_only=True)
class TradingDesk:
    """Price monitoring and the inverter and storage controller of every trading prosumer."""

    site: Site
    settings: TradingSettings
    book: PriceBook
    requests: dict[str, float] = field(default_factory=dict)
    """Storage requests now: battery -> kW (positive discharges to the grid, negative charges)."""
    holding: str = ""
    """Why trading holds (no price), or empty."""
    trading: dict[str, CustomerTrading] = field(default_factory=dict)
    """The prosumers who trade, and their references, as read at this interval."""
    _interval: datetime | None = None

    def update(self, now: datetime, *, problem: str = "") -> bool:
        """At a new interval, or while holding: read the references and the price, decide.
        ``problem``: the price source failed (trading holds). Says if it decided."""
        interval = pd.Timestamp(now).floor(INTERVAL).to_pydatetime()
        if interval == self._interval and not self.holding and not problem:
            return False
        if interval != self._interval:  # the references are read once an interval
            self.trading = self.settings.all()
        self._interval = interval
        self.requests = {}
        trading = self.trading
        if problem:
            self.holding = f"{problem}: trading holds"
            return True
        price = self.book.price_at(now)
        if price is None:
            self.holding = f"no market price for {interval.isoformat()}: trading holds"
            return True
        self.holding = ""
        hour = np.array([pd.Timestamp(now).tz_convert(self.site.site.timezone).hour])
        for customer, t in trading.items():
            for battery in storage_of(self.site, customer):
                request = trading_requests(
                    np.array([price[0]]),
                    np.array([price[1]]),
                    hour,
                    list(t.references),
                    p_charge_max_kw=battery.p_charge_max_kw,
                    p_discharge_max_kw=battery.p_discharge_max_kw,
                )
                if request[0] != 0.0:
                    self.requests[battery.id] = float(request[0])
        return True


@dataclass(kw_only=True)
class PriceTrading:
    """The desk's storage requests as setpoints in the control cycle."""

    desk: TradingDesk
    priority: int
    name: str = "price_trading"

    def run(self, image: ProcessImage) -> dict[str, float]:
        return {f"{b}/p_set_kw": kw for b, kw in self.desk.requests.items()}


@dataclass(frozen=True, kw_only=True)
class AccountsReport:
    meter: str
    accounts: Accounts
    intervals: int
    missing_intervals: int
    import_kwh: float
    export_kwh: float


def trading_accounts(
    readings: IntervalSeries,
    book: PriceBook,
    meter: str,
    start: datetime,
    end: datetime,
    *,
    incentive_per_kwh: float = 0.0,
) -> AccountsReport:
    """Purchases, sales and incentives over ``[start, end)`` from the meter's 15-minute energy
    in and out, each interval at its time-weighted market prices. Intervals without a reading
    or without a price count nothing and are reported as missing."""
    idx = pd.date_range(as_utc(start), as_utc(end), freq=INTERVAL, inclusive="left")
    imp = readings.series(meter, "import", start, end).reindex(idx)
    exp = readings.series(meter, "export", start, end).reindex(idx)
    prices = book.interval_prices(idx, INTERVAL.total_seconds())
    buy, sell = prices.buy, prices.sell
    known = prices.priced & imp.notna().to_numpy() & exp.notna().to_numpy()
    imp_kwh = np.where(known, imp.fillna(0.0).to_numpy(), 0.0)
    exp_kwh = np.where(known, exp.fillna(0.0).to_numpy(), 0.0)
    return AccountsReport(
        meter=meter,
        accounts=accounting(imp_kwh, exp_kwh, buy, sell, incentive_per_kwh_sold=incentive_per_kwh),
        intervals=int(known.sum()),
        missing_intervals=int(idx.size - known.sum()),
        import_kwh=float(imp_kwh.sum()),
        export_kwh=float(exp_kwh.sum()),
    )


def prosumer_accounts(
    site: Site, store: Store, customer: str, start: datetime, end: datetime
) -> AccountsReport:
    """``trading_accounts`` of the prosumer's smart meter with the incentive of their trading
    settings; ``TradingError`` if they have no smart meter."""
    meter = meter_of(site, customer)
    settings = TradingSettings(store, site).get(customer)
    return trading_accounts(
        ValidatedReadings(store, site.site.id),
        PriceBook(store, site.site.id),
        meter,
        start,
        end,
        incentive_per_kwh=settings.incentive_per_kwh if settings else 0.0,
    )


def month_start(now: datetime, timezone: str) -> datetime:
    """The start of the local month holding ``now``, in UTC."""
    local = pd.Timestamp(now).tz_convert(timezone)
    first = local.normalize() - timedelta(days=local.day - 1)
    return as_utc(first.to_pydatetime())
