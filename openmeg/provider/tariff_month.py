"""One tariff's month laid out for billing on whole arrays: built once per (tariff, month,
time zone) and shared by every customer on that tariff.

The month's 15-minute intervals are cut into *runs*: spans of consecutive intervals with the same
energy period and the same demand period (a run changes at most at an hour boundary). Sums and
peaks are taken per run with one ``reduceat`` over the [customers x intervals] matrix; everything
else (tiers, carry-over, charges) works on the few runs and periods, not on intervals.

NREL's reading of URDB (SAM ``Utilityrate5``, ``PySAM.UtilityRateTools``) is followed: a tier's
``max`` applies to the month's total and is the same for every period of a month (SAM refuses a
tariff whose periods differ; here the month's first period gives the bounds); ``kWh daily``
multiplies it by the days of the month and ``kWh/kW`` by the month's peak demand (kW); a fixed
charge or minimum in $/day counts 365/12 days a month and one in $/year is a twelfth a month
(fixed) or an annual minimum applied in December (minimum).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np
import pandas as pd

from openmeg.core.tariff import Tariff, Tier, tier_limit_problem

ROLLOVER_HOURS = (0, 5, 11, 17)  # SAM maps carried kWh between months by these weekday hours
DAYS_PER_MONTH = 365 / 12


@dataclass(frozen=True, kw_only=True)
class MonthPlan:
    """Everything about one tariff and one billing month that does not depend on the customer.

    Attributes
    ----------
    month : local calendar month of the bill's first interval, 1-12
    days : local days in the billing period
    starts : first interval of each run [n_runs]
    run_energy, run_demand : energy and demand period index of each run [n_runs]
    energy_onehot : [n_runs, n_energy_periods] 1.0 where the run is in the period
    tier_max : upper bound of each energy tier, kWh (or kWh per kW when ``tier_per_kw``) [n_tiers]
    buy, sell : energy prices per period and tier, currency per kWh [n_periods, n_tiers]
    rollover : [n_periods, n_periods] 1.0 where kWh carried from the previous month's period
        (row) land in this month's period (column)
    flat_max, flat_rate : this month's flat demand tiers, kW and currency per kW
    tou_max, tou_rate : time-of-use demand tiers per period [n_demand_periods, n_dtiers]
    fixed : fixed charge of the month, currency; fixed_quantity and fixed_unit describe it
    min_month, min_year : monthly and annual minimum bill, currency
    buy_rt, sell_rt : real-time prices per interval, currency per kWh (None without ``realtime``)
    """

    month: int
    days: int
    n_intervals: int
    starts: np.ndarray
    run_energy: np.ndarray
    run_demand: np.ndarray
    energy_onehot: np.ndarray
    energy_present: np.ndarray
    demand_present: np.ndarray
    tier_max: np.ndarray
    tier_per_kw: bool
    buy: np.ndarray
    sell: np.ndarray
    rollover: np.ndarray
    flat_max: np.ndarray
    flat_rate: np.ndarray
    tou_max: np.ndarray
    tou_rate: np.ndarray
    fixed: float
    fixed_quantity: float
    fixed_unit: str
    min_month: float
    min_year: float
    buy_rt: np.ndarray | None
    sell_rt: np.ndarray | None


def month_plan(tariff: Tariff, index: pd.DatetimeIndex, timezone: str) -> MonthPlan:
    """The plan of ``tariff`` over ``index`` (UTC starts of consecutive 15-minute intervals)."""
    if len(index) == 0:
        raise ValueError("the billing period has no 15-minute interval: check start and end")
    start = pd.Timestamp(index[0])
    key = (tariff.model_dump_json(), start.value, len(index), timezone)
    return _cached(key)


@functools.lru_cache(maxsize=128)
def _cached(key: tuple[str, int, int, str]) -> MonthPlan:
    tariff_json, start_ns, n, timezone = key
    tariff = Tariff.model_validate_json(tariff_json)
    index = pd.date_range(pd.Timestamp(start_ns, tz="UTC"), periods=n, freq="15min")
    local = index.tz_convert(timezone)
    month0 = int(local.month[0]) - 1
    days = len(np.unique(local.normalize().asi8))
    e_per = _periods(local, tariff.energyweekdayschedule, tariff.energyweekendschedule)
    d_per = _periods(local, tariff.demandweekdayschedule, tariff.demandweekendschedule)
    key_run = e_per * 1000 + d_per
    starts = np.flatnonzero(np.r_[True, key_run[1:] != key_run[:-1]])
    n_e = max(len(tariff.energyratestructure), 1)
    onehot = np.zeros((len(starts), n_e))
    onehot[np.arange(len(starts)), e_per[starts]] = 1.0
    tier_max, per_kw, buy, sell = _energy_tiers(tariff, np.unique(e_per), n_e, days)
    flat = tariff.flatdemandstructure
    flat_tiers = flat[tariff.flatdemandmonths[month0]] if flat and tariff.flatdemandmonths else []
    tou_max, tou_rate = _padded(tariff.demandratestructure)
    fixed, fixed_q, fixed_u = _fixed(tariff)
    buy_rt, sell_rt = _realtime(tariff, index) if tariff.realtime else (None, None)
    return MonthPlan(
        month=month0 + 1,
        days=days,
        n_intervals=n,
        starts=starts,
        run_energy=e_per[starts],
        run_demand=d_per[starts],
        energy_onehot=onehot,
        energy_present=np.unique(e_per),
        demand_present=np.unique(d_per) if tariff.demandratestructure else np.zeros(0, int),
        tier_max=tier_max,
        tier_per_kw=per_kw,
        buy=buy,
        sell=sell,
        rollover=_rollover(tariff, month0, n_e),
        flat_max=np.array([_top(t) for t in flat_tiers]),
        flat_rate=np.array([t.rate + t.adj for t in flat_tiers]),
        tou_max=tou_max,
        tou_rate=tou_rate,
        fixed=fixed,
        fixed_quantity=fixed_q,
        fixed_unit=fixed_u,
        min_month=_minimum(tariff, monthly=True),
        min_year=_minimum(tariff, monthly=False),
        buy_rt=buy_rt,
        sell_rt=sell_rt,
    )


def _top(tier: Tier) -> float:
    return float("inf") if tier.max is None else tier.max


def _periods(
    local: pd.DatetimeIndex, weekday: list[list[int]] | None, weekend: list[list[int]] | None
) -> np.ndarray:
    if weekday is None or weekend is None:
        return np.zeros(len(local), dtype=np.int64)
    month = local.month.to_numpy() - 1
    hour = local.hour.to_numpy()
    wk = np.asarray(weekday)[month, hour]
    we = np.asarray(weekend)[month, hour]
    periods: np.ndarray = np.where(local.dayofweek.to_numpy() >= 5, we, wk).astype(np.int64)
    return periods


def _energy_tiers(
    tariff: Tariff, present: np.ndarray, n_e: int, days: int
) -> tuple[np.ndarray, bool, np.ndarray, np.ndarray]:
    structure = tariff.energyratestructure or [[Tier()]]
    n_t = max(len(structure[p]) for p in present)
    first = structure[int(present[0])]
    problem = tier_limit_problem(tariff, [int(p) for p in present])
    if problem:
        raise ValueError(problem)
    units = {t.unit or "kWh" for t in first if t.max is not None}
    unit = units.pop() if units else "kWh"
    tier_max = np.full(n_t, np.inf)
    tier_max[: len(first)] = [_top(t) for t in first]
    if unit.endswith("daily"):
        tier_max = tier_max * days
    buy = np.zeros((n_e, n_t))
    sell = np.zeros((n_e, n_t))
    for p, tiers in enumerate(structure):
        for t in range(n_t):
            tier = tiers[min(t, len(tiers) - 1)]  # a shorter period keeps its last tier's prices
            buy[p, t] = tier.rate + tier.adj
            sell[p, t] = tier.sell
    return tier_max, unit.startswith("kWh/kW"), buy, sell


def _padded(structure: list[list[Tier]]) -> tuple[np.ndarray, np.ndarray]:
    n_t = max((len(tiers) for tiers in structure), default=0)
    top = np.full((len(structure), n_t), np.inf)
    rate = np.zeros((len(structure), n_t))
    for p, tiers in enumerate(structure):
        top[p, : len(tiers)] = [_top(t) for t in tiers]
        rate[p, : len(tiers)] = [t.rate + t.adj for t in tiers]
    return top, rate


def _rollover(tariff: Tariff, month0: int, n_e: int) -> np.ndarray:
    """Where kWh carried from each period of the previous month land (SAM's rollover map)."""
    matrix = np.zeros((n_e, n_e))
    weekday = tariff.energyweekdayschedule
    if weekday is None:
        matrix[0, 0] = 1.0
        return matrix
    before = [weekday[(month0 - 1) % 12][h] for h in ROLLOVER_HOURS]
    now = [weekday[month0][h] for h in ROLLOVER_HOURS]
    for p in range(n_e):
        if p in before:  # a period absent at those hours carries nothing, as in SAM
            matrix[p, now[before.index(p)]] = 1.0
    return matrix


def _fixed(tariff: Tariff) -> tuple[float, float, str]:
    value = tariff.fixedchargefirstmeter
    if tariff.fixedchargeunits == "$/day":
        return value * DAYS_PER_MONTH, DAYS_PER_MONTH, "day"
    if tariff.fixedchargeunits == "$/year":
        return value / 12, 1 / 12, "year"
    return value, 1.0, "month"


def _minimum(tariff: Tariff, *, monthly: bool) -> float:
    if tariff.minchargeunits == "$/year":
        return 0.0 if monthly else tariff.mincharge
    if not monthly:
        return 0.0
    factor = DAYS_PER_MONTH if tariff.minchargeunits == "$/day" else 1.0
    return tariff.mincharge * factor


def _realtime(tariff: Tariff, index: pd.DatetimeIndex) -> tuple[np.ndarray, np.ndarray]:
    starts = pd.DatetimeIndex([p.start for p in tariff.realtime]).tz_convert("UTC")
    prices = pd.DataFrame(
        {"buy": [p.buy for p in tariff.realtime], "sell": [p.sell for p in tariff.realtime]},
        index=starts,
    ).sort_index()
    prices = prices[~prices.index.duplicated(keep="last")]
    hour = index.floor("h")
    missing = hour.difference(prices.index)
    if len(missing):
        raise ValueError(
            f"no real-time price for the hour of {missing[0].isoformat()}: add it to the tariff"
        )
    return prices["buy"].reindex(hour).to_numpy(), prices["sell"].reindex(hour).to_numpy()
