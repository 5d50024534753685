"""Settling the local market's days on the store: which prosumers' days VEE has validated,
their validated positions and local trades as arrays, a revision stored where money or energy
changed (``settlement`` says the rules)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

import numpy as np
import pandas as pd
import sqlalchemy as sa

from openmeg.core.site import Site
from openmeg.core.store import Store, as_utc
from openmeg.customer.price_book import PriceBook
from openmeg.market.local_market import p2p_settlements
from openmeg.market.settlement import cents, imbalance_money, p2p_day_settlements
from openmeg.operation.mdms import raw_arrays
from openmeg.operation.mdms.store import CHANNELS
from openmeg.operation.mdms.validated import STEP, ValidatedReadings

_COLUMNS = [c.name for c in p2p_day_settlements.columns]


@dataclass(frozen=True, kw_only=True)
class DayState:
    """Whose local ``day`` VEE has validated as the readings are now (``basis``: the raw
    revisions it validated, per customer) and, for the others, what is missing."""

    day: str
    basis: dict[str, str] = field(default_factory=dict)
    waiting: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True, kw_only=True)
class DayOutcome:
    day: str
    revised: list[str]
    """Customers given a new revision (revision 1 included)."""
    unchanged: list[str]
    waiting: dict[str, str]
    """Customers not settled, and why."""


class MarketSettlement:
    """The settlement of the local days of ``site``'s local market (``meters``: customer ->
    their own meter), on the validated series, with the prices of ``book``."""

    def __init__(
        self,
        store: Store,
        site: str,
        *,
        timezone: str,
        meters: Mapping[str, str],
        book: PriceBook,
        validated: ValidatedReadings | None = None,
    ) -> None:
        self.store, self.site, self.timezone, self.book = store, site, timezone, book
        self.customers = sorted(meters)
        self.meters = [meters[c] for c in self.customers]
        self.validated = validated or ValidatedReadings(store, site)
        self._known: dict[str, dict[str, str]] = {}
        p2p_day_settlements.create(store.engine, checkfirst=True)
        p2p_settlements.create(store.engine, checkfirst=True)

    def bounds(self, day: date) -> tuple[pd.Timestamp, pd.Timestamp]:
        """The UTC instants the local ``day`` begins and ends."""
        start = pd.Timestamp(day).tz_localize(self.timezone).tz_convert("UTC")
        end = pd.Timestamp(day + timedelta(days=1)).tz_localize(self.timezone).tz_convert("UTC")
        return start, end

    def closed_days(self, now: datetime, lookback_days: int) -> list[date]:
        """The local days of the last ``lookback_days`` that have ended at ``now``."""
        today = pd.Timestamp(as_utc(now)).tz_convert(self.timezone).date()
        return [today - timedelta(days=k) for k in range(lookback_days, 0, -1)]

    def state(self, day: date) -> DayState:
        """Whose local ``day`` is validated at the raw revision of its readings now."""
        [out] = self.states([day])
        return out

    def states(self, days: list[date]) -> list[DayState]:
        """:meth:`state` of each of ``days``, from one read of the raw revisions and of VEE's
        status per channel over the span of the days."""
        if not days:
            return []
        bounds = [self.bounds(d) for d in days]
        lo = raw_arrays.utc_day_floor(min(b[0] for b in bounds))
        hi = raw_arrays.utc_day_ceil(max(b[1] for b in bounds))
        i0 = np.array([int((b[0] - lo) / STEP) for b in bounds])
        i1 = np.array([int((b[1] - lo) / STEP) for b in bounds])
        d0, d1 = i0 // raw_arrays.PER_DAY, -(-i1 // raw_arrays.PER_DAY)
        names = [d.isoformat() for d in days]
        shape = (len(self.meters), len(days))
        ok, absent = np.ones(shape, bool), np.ones(shape, bool)
        done_by: list[np.ndarray] = []
        why = np.full(shape, "", dtype=object)
        for channel in CHANNELS:
            values, revs = raw_arrays.raw_days(self.validated.raw, self.meters, channel, lo, hi)
            seen = np.zeros((shape[0], values.shape[1] + 1), np.int64)
            np.cumsum(~np.isnan(values), axis=1, out=seen[:, 1:])
            cum = np.zeros((shape[0], revs.shape[1] + 1), np.int64)
            np.cumsum(revs, axis=1, out=cum[:, 1:])
            own = seen[:, i1] - seen[:, i0] > 0
            now_rev = cum[:, d1] - cum[:, d0]
            done = self.validated.status(self.meters, channel, names)
            done_by.append(done)
            unused = (done == -1) & ~own
            stale = ~unused & (done != now_rev)
            for i, j in zip(*np.nonzero(stale & (why == "")), strict=True):
                why[i, j] = f"{self.meters[i]} {channel}: " + (
                    "not validated yet (openmeg vee run, or the automatic VEE)"
                    if done[i, j] == -1
                    else "readings changed since VEE validated them"
                )
            ok &= ~stale
            absent &= unused
        out = []
        for j, name in enumerate(names):
            state = DayState(day=name)
            for i, customer in enumerate(self.customers):
                if absent[i, j]:
                    state.waiting[customer] = f"{self.meters[i]}: no readings on {name}"
                elif not ok[i, j]:
                    state.waiting[customer] = str(why[i, j])
                else:
                    state.basis[customer] = ";".join(
                        f"{c}:{int(d[i, j])}" for c, d in zip(CHANNELS, done_by, strict=True)
                    )
            out.append(state)
        return out

    def _local(
        self, customers: list[str], start: pd.Timestamp, n: int
    ) -> tuple[np.ndarray, np.ndarray]:
        """The local trades cleared in real time: kWh [customers, n] and price [n]."""
        t = p2p_settlements.c
        q = sa.select(t.customer, t.interval_start, t.clearing_price, t.local_kwh).where(
            t.site == self.site,
            t.interval_start >= start.to_pydatetime(),
            t.interval_start < (start + n * STEP).to_pydatetime(),
        )
        with self.store.engine.connect() as conn:
            rows = [r for r in conn.execute(q) if r[0] in customers]
        local, price = np.zeros((len(customers), n)), np.full(n, np.nan)
        if rows:
            where = {c: i for i, c in enumerate(customers)}
            at = pd.to_datetime([r[1] for r in rows], utc=True).as_unit("ns").asi8
            col = (at - start.value) // STEP.value
            row = np.array([where[r[0]] for r in rows], np.int64)
            local[row, col] = [r[3] for r in rows]
            price[col] = [np.nan if r[2] is None else r[2] for r in rows]
        return local, price

    def settle(self, day: date, *, now: datetime) -> DayOutcome:
        """Settle (or re-settle) the validated prosumers of the local ``day``."""
        return self._settle(day, self.state(day), now)

    def _settle(self, day: date, state: DayState, now: datetime) -> DayOutcome:
        names = sorted(state.basis)
        waiting = dict(state.waiting)
        if not names:
            return DayOutcome(day=state.day, revised=[], unchanged=[], waiting=waiting)
        start, end = self.bounds(day)
        meter_of = dict(zip(self.customers, self.meters, strict=True))
        meters = [meter_of[c] for c in names]
        imp, _ = self.validated.arrays(meters, "import", start, end)
        exp, _ = self.validated.arrays(meters, "export", start, end)
        position = np.nan_to_num(imp) - np.nan_to_num(exp)
        n = position.shape[1]
        local, price = self._local(names, start, n)
        prices = self.book.interval_prices(pd.date_range(start, periods=n, freq=STEP))
        utility, local_money, utility_money = imbalance_money(
            position, local, price, prices.buy, prices.sell
        )
        unpriced = ((utility != 0) & ~prices.priced).sum(axis=1)
        latest = self.latest([state.day]).set_index("customer")
        rows, revised, unchanged = [], [], []
        for i, c in enumerate(names):
            if unpriced[i]:
                waiting[c] = f"no market price for {unpriced[i]} of its intervals"
                continue
            row = {
                "position_kwh": round(float(position[i].sum()), 6),
                "local_kwh": round(float(local[i].sum()), 6),
                "utility_kwh": round(float(utility[i].sum()), 6),
                "local_cents": cents(float(local_money[i].sum())),
                "utility_cents": cents(float(utility_money[i].sum())),
            }
            before = latest.loc[c] if c in latest.index else None
            if before is not None and all(before[k] == v for k, v in row.items()):
                unchanged.append(c)
                continue
            money = row["local_cents"] + row["utility_cents"]
            previous = int(before["money_cents"]) if before is not None else 0
            rows.append(
                {
                    "site": self.site,
                    "day": state.day,
                    "customer": c,
                    "revision": int(before["revision"]) + 1 if before is not None else 1,
                    **row,
                    "money_cents": money,
                    "difference_cents": money - previous,
                    "basis": state.basis[c],
                    "settled_at": as_utc(now),
                }
            )
            revised.append(c)
        if rows:
            with self.store.engine.begin() as conn:
                conn.execute(p2p_day_settlements.insert(), rows)
        return DayOutcome(day=state.day, revised=revised, unchanged=unchanged, waiting=waiting)

    def settle_days(self, days: Iterable[date], *, now: datetime) -> list[DayOutcome]:
        """Settle each of ``days`` whose validated prosumers differ, or were validated at other
        raw revisions, from the last call's (all of them on the first call)."""
        wanted = list(days)
        out = []
        for day, state in zip(wanted, self.states(wanted), strict=True):
            if not state.basis or self._known.get(state.day) == state.basis:
                continue
            done = self._settle(day, state, now)
            if not set(done.waiting) & set(state.basis):
                self._known[state.day] = state.basis
            out.append(done)
        return out

    def revisions(self, days: list[str]) -> pd.DataFrame:
        """Every stored revision of the local ``days`` (ISO dates), by day, customer, revision."""
        t = p2p_day_settlements.c
        q = (
            sa.select(p2p_day_settlements)
            .where(t.site == self.site, t.day.in_(days))
            .order_by(t.day, t.customer, t.revision)
        )
        with self.store.engine.connect() as conn:
            rows = [dict(r._mapping) for r in conn.execute(q)]
        return pd.DataFrame(rows, columns=_COLUMNS)

    def latest(self, days: list[str]) -> pd.DataFrame:
        """The newest revision of each customer's settlement of the local ``days``."""
        rows = self.revisions(days)
        return rows.groupby(["day", "customer"], as_index=False).tail(1).reset_index(drop=True)


def local_days(t0: datetime, t1: datetime, timezone: str) -> list[date]:
    """The local days (in ``timezone``) whose midnight lies in ``[t0, t1)``."""
    first = pd.Timestamp(as_utc(t0)).tz_convert(timezone).ceil("D").tz_localize(None)
    last = pd.Timestamp(as_utc(t1)).tz_convert(timezone).tz_localize(None)
    return [d.date() for d in pd.date_range(first, last, freq="D", inclusive="left")]


def site_settlement(
    store: Store, site: Site, book: PriceBook, validated: ValidatedReadings | None = None
) -> MarketSettlement:
    """The settlement of the site's local market: every customer with a main meter, on it."""
    meters = {m.customer: m.id for m in site.meters if m.parent is None}
    return MarketSettlement(
        store,
        site.site.id,
        timezone=site.site.timezone,
        meters=meters,
        book=book,
        validated=validated,
    )
