"""The billing engine: one customer's meter, one period, one tariff, from validated 15-minute
import and export energy. Pure; money in Decimal, each line rounded half-up to the cent.

Tiers apply to each period's energy (kWh) or demand (kW) within the bill. Net metering nets
import against export within each energy period and credits a net export at the period's first
tier rate; net billing and buy-all-sell-all bill import at the retail rates and credit export at
the first tier's ``sell`` rate. Demand is the largest 15-minute average import (kW).
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal

import numpy as np
import pandas as pd

from openmeg.core.tariff import Tariff, Tier

CENT = Decimal("0.01")
INTERVAL_H = 0.25


@dataclass(frozen=True, kw_only=True)
class BillLine:
    description: str
    quantity: Decimal
    unit: str
    rate: Decimal
    amount: Decimal


@dataclass(frozen=True, kw_only=True)
class Bill:
    customer: str
    meter: str
    start: pd.Timestamp
    end: pd.Timestamp
    tariff: str
    lines: tuple[BillLine, ...]

    @property
    def total(self) -> Decimal:
        return sum((line.amount for line in self.lines), Decimal("0.00"))


def _d(x: float) -> Decimal:
    return Decimal(repr(float(x)))


def _line(description: str, quantity: float, unit: str, rate: float) -> BillLine:
    q, r = _d(quantity), _d(rate)
    return BillLine(
        description=description,
        quantity=q,
        unit=unit,
        rate=r,
        amount=(q * r).quantize(CENT, rounding=ROUND_HALF_UP),
    )


def _tiered(quantity: float, tiers: list[Tier], label: str, unit: str) -> list[BillLine]:
    """Lines for ``quantity`` spread over tiers (each ``max`` an upper bound, cumulative)."""
    lines = []
    below = 0.0
    for n, tier in enumerate(tiers, start=1):
        top = tier.max if tier.max is not None else float("inf")
        part = max(0.0, min(quantity, top) - below)
        if part > 0:
            name = label if len(tiers) == 1 else f"{label}, tier {n}"
            lines.append(_line(name, round(part, 6), unit, tier.rate + tier.adj))
        below = top
        if quantity <= top:
            break
    return lines


def _periods(
    index: pd.DatetimeIndex, weekday: list[list[int]], weekend: list[list[int]]
) -> np.ndarray:
    month = index.month.to_numpy() - 1
    hour = index.hour.to_numpy()
    wk = np.asarray(weekday)[month, hour]
    we = np.asarray(weekend)[month, hour]
    periods: np.ndarray = np.where(index.dayofweek.to_numpy() >= 5, we, wk)
    return periods


def bill(
    tariff: Tariff,
    import_kwh: pd.Series,
    export_kwh: pd.Series,
    *,
    timezone: str,
    customer: str,
    meter: str,
    start: pd.Timestamp,
    end: pd.Timestamp,
) -> Bill:
    """The bill of ``[start, end)``; both series are 15-minute energies indexed by UTC start."""
    idx = pd.date_range(
        start.tz_convert("UTC"), end.tz_convert("UTC"), freq="15min", inclusive="left"
    )
    imp = import_kwh.reindex(idx)
    exp = export_kwh.reindex(idx).fillna(0.0)
    if imp.isna().any():
        first = imp.index[imp.isna()][0]
        raise ValueError(f"no validated import reading for {first.isoformat()}: run VEE first")
    local = idx.tz_convert(timezone)
    lines: list[BillLine] = []
    if tariff.fixedchargefirstmeter:
        lines.append(_line("fixed charge", 1, "month", tariff.fixedchargefirstmeter))
    if tariff.realtime:
        lines += _realtime_lines(tariff, imp, exp)
    elif tariff.energyratestructure:
        assert tariff.energyweekdayschedule is not None and tariff.energyweekendschedule is not None
        periods = _periods(local, tariff.energyweekdayschedule, tariff.energyweekendschedule)
        for p, tiers in enumerate(tariff.energyratestructure):
            mask = periods == p
            if not mask.any():
                continue
            label = "energy" if len(tariff.energyratestructure) == 1 else f"energy, period {p + 1}"
            i_kwh, e_kwh = float(imp[mask].sum()), float(exp[mask].sum())
            if tariff.dgrules == "Net Metering":
                net = round(i_kwh - e_kwh, 9)
                lines += _tiered(net, tiers, label, "kWh")
                if net < 0:
                    lines.append(
                        _line(
                            f"{label}, net export credit", net, "kWh", tiers[0].rate + tiers[0].adj
                        )
                    )
            else:
                lines += _tiered(round(i_kwh, 9), tiers, label, "kWh")
                if e_kwh > 0:
                    lines.append(
                        _line(f"{label}, export credit", -round(e_kwh, 9), "kWh", tiers[0].sell)
                    )
    demand_kw = imp / INTERVAL_H
    if tariff.demandratestructure:
        assert tariff.demandweekdayschedule is not None and tariff.demandweekendschedule is not None
        periods = _periods(local, tariff.demandweekdayschedule, tariff.demandweekendschedule)
        for p, tiers in enumerate(tariff.demandratestructure):
            mask = periods == p
            if mask.any():
                peak = round(float(demand_kw[mask].max()), 6)
                lines += _tiered(peak, tiers, f"demand, period {p + 1}", "kW")
    if tariff.flatdemandstructure:
        assert tariff.flatdemandmonths is not None
        for month in sorted(set(local.month)):
            mask = local.month == month
            tiers = tariff.flatdemandstructure[tariff.flatdemandmonths[month - 1]]
            lines += _tiered(round(float(demand_kw[mask].max()), 6), tiers, "demand", "kW")
    subtotal = sum((line.amount for line in lines), Decimal("0.00"))
    minimum = _d(tariff.mincharge).quantize(CENT)
    if tariff.mincharge > 0 and subtotal < minimum:
        lines.append(
            BillLine(
                description="minimum charge adjustment",
                quantity=Decimal(1),
                unit="month",
                rate=minimum - subtotal,
                amount=minimum - subtotal,
            )
        )
    return Bill(
        customer=customer, meter=meter, start=start, end=end, tariff=tariff.name, lines=tuple(lines)
    )


def _realtime_lines(tariff: Tariff, imp: pd.Series, exp: pd.Series) -> list[BillLine]:
    prices = pd.DataFrame(
        [(p.start, p.buy, p.sell) for p in tariff.realtime], columns=["start", "buy", "sell"]
    )
    prices["start"] = pd.to_datetime(prices["start"], utc=True)
    prices = prices.set_index("start").sort_index()
    hour = imp.index.floor("h")
    missing = hour.difference(prices.index)
    if len(missing):
        raise ValueError(f"no real-time price for the hour of {missing[0].isoformat()}")
    buy = prices["buy"].reindex(hour).to_numpy()
    sell = prices["sell"].reindex(hour).to_numpy()
    lines = []
    for label, kwh, price, sign in (
        ("energy at real-time prices", imp.to_numpy(), buy, 1.0),
        ("export at real-time prices", exp.to_numpy(), sell, -1.0),
    ):
        quantity = round(float(kwh.sum()), 9)
        if not quantity:
            continue
        money = Decimal(repr(float(np.dot(kwh, price)))) * Decimal(repr(sign))
        amount = money.quantize(CENT, rounding=ROUND_HALF_UP)
        average = (money / Decimal(repr(quantity))).quantize(Decimal("0.00001"))
        lines.append(
            BillLine(
                description=label,
                quantity=Decimal(repr(sign * quantity)),
                unit="kWh",
                rate=average * Decimal(repr(sign)),
                amount=amount,
            )
        )
    return lines
