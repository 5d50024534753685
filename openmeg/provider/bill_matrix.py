"""A month's bills for every customer on one tariff at once, as NREL's SAM reads URDB.

Input: [customers x intervals] matrices of 15-minute import and export energy (kWh) over one
billing month. Output: one array per bill line (quantity, rate, amount per customer) and the
carry-over for the next month. Pure numpy; money becomes cents once per line, here, and exact
decimals only when :mod:`openmeg.provider.billing` builds the bills.

The reading of ``dgrules`` is SAM's (``cmod_utilityrate5``):

* **Net Metering** (SAM option 0): each energy period nets import and export over the month;
  kWh carried from the previous month's same period (same time of day, SAM's rollover map) are
  added; a period left in surplus carries its kWh on, a period in use is billed. The month's
  used kWh fill the tiers as a whole and each period takes its share of every tier. The year's
  cumulative net excess (kWh) is paid at ``nm_yearend_sell_rate`` in ``nm_credit_month``, and
  the carry starts again.
* **Net Billing Instantaneous** (option 2): every interval's net import is bought and net export
  sold; tiers fill in time order with the month's cumulative import (and export, at the tiers'
  ``sell`` prices).
* **Net Billing Hourly** (option 3, net billing with carry-over): as option 2, but the month's
  export credit pays the next month's energy; credit still left is paid at the true-up.
* **Buy All Sell All** (option 4): import is the load meter, export the generation meter; all
  import bought, all export sold, each with its own tiers in time order; minimum charges look at
  the load bill only.

Demand is the largest 15-minute average net import (kW) of the month (flat) and of each demand
period (time of use), with tiers. Minimum charges apply to the energy, demand and fixed charges
(never below zero); an annual minimum is settled in December.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from openmeg.core.tariff import Tariff
from openmeg.provider.bill_carry import Carry
from openmeg.provider.bill_reduce import RunSums, reduce_runs
from openmeg.provider.tariff_month import MonthPlan, month_plan

INTERVAL_H = 0.25
AMOUNT_MAX = 1e10  # currency: 1e12 cents, far from int64's 9.2e18 and from any real bill


class AmountError(ValueError):
    """Bill lines that are not finite or beyond ``AMOUNT_MAX``; ``rows`` maps each refused
    customer (row, or id once :func:`openmeg.provider.billing.bill_month` names it) to what is
    wrong with its bill. The other customers' bills are sound: bill them without these."""

    def __init__(self, rows: dict[int, str] | dict[str, str]) -> None:
        self.rows = rows
        super().__init__("; ".join(f"customer {k!r}: {v}" for k, v in rows.items()))


@dataclass(frozen=True, kw_only=True)
class LineArray:
    """One bill line for every customer: quantity [unit], rate [currency per unit], amount."""

    description: str
    unit: str
    quantity: np.ndarray
    rate: np.ndarray
    amount: np.ndarray


@dataclass(frozen=True, kw_only=True)
class MonthBills:
    """A month's bills as arrays; ``cents`` is each line's amount rounded once [lines x customers].

    ``components`` holds the unrounded sums SAM reports per month: ``energy``, ``demand_flat``,
    ``demand_tou``, ``fixed``, ``minimum``, ``true_up`` (a credit, positive) and ``total``.
    """

    plan: MonthPlan
    lines: tuple[LineArray, ...]
    cents: np.ndarray
    components: dict[str, np.ndarray]

    @property
    def total_cents(self) -> np.ndarray:
        total: np.ndarray = self.cents.sum(axis=0)
        return total


def to_cents(amount: np.ndarray) -> np.ndarray:
    """Round currency to whole cents, half away from zero (int64).

    Raises ValueError for an amount that is not finite or beyond ``AMOUNT_MAX`` (never an int64
    overflow); :func:`bill_arrays` refuses such bills per customer before it gets here.
    """
    amount = np.asarray(amount, dtype=np.float64)
    if not (np.isfinite(amount) & (np.abs(amount) <= AMOUNT_MAX)).all():
        raise ValueError(
            f"an amount is not finite or beyond {AMOUNT_MAX:.0e}: check the readings (VEE flags "
            "values beyond what a meter measures)"
        )
    cents: np.ndarray = np.floor(np.abs(amount) * 100.0 + 0.5 + 1e-9) * np.sign(amount)
    return cents.astype(np.int64)


def _refuse_infinite(
    finite: np.ndarray, imp: np.ndarray, exp: np.ndarray, index: pd.DatetimeIndex
) -> None:
    """Raise :class:`AmountError` for every customer row whose sums are not ``finite``: an
    infinite reading, or readings that add up beyond a float."""
    rows: dict[int, str] = {}
    for i in np.flatnonzero(~finite).tolist():
        inf = np.isinf(imp[i]) | np.isinf(exp[i])
        what = (
            f"an infinite reading for {index[int(np.argmax(inf))].isoformat()}"
            if inf.any()
            else "readings that add up beyond what a number holds"
        )
        rows[i] = (
            f"{what}, beyond what a bill can hold; check the readings: VEE flags values beyond "
            "what a meter measures (openmeg vee run), correct or edit them, then bill again; "
            "nothing is billed for this customer"
        )
    if rows:
        raise AmountError(rows)


def _refuse_unbillable(lines: list[LineArray], n_c: int) -> None:
    """Raise :class:`AmountError` naming every customer row with a line whose quantity or amount
    is not finite or whose amount is beyond ``AMOUNT_MAX``, with the first such line."""
    if not lines:
        return
    amount = np.array([np.broadcast_to(ln.amount, (n_c,)) for ln in lines], dtype=np.float64)
    quantity = np.array([ln.quantity for ln in lines], dtype=np.float64)
    bad = ~np.isfinite(amount) | ~np.isfinite(quantity) | (np.abs(amount) > AMOUNT_MAX)
    if not bad.any():
        return
    rows: dict[int, str] = {}
    for i in np.flatnonzero(bad.any(axis=0)).tolist():
        k = int(np.argmax(bad[:, i]))
        ln = lines[k]
        rows[i] = (
            f"bill line {ln.description!r} comes to {amount[k, i]:.4g} for "
            f"{quantity[k, i]:.4g} {ln.unit}, beyond what a bill can hold ({AMOUNT_MAX:.0e}); "
            "check the readings: VEE flags values beyond what a meter measures (openmeg vee "
            "run), correct or edit them, then bill again; nothing is billed for this customer"
        )
    raise AmountError(rows)


def bill_arrays(
    tariff: Tariff,
    index: pd.DatetimeIndex,
    import_kwh: np.ndarray,
    export_kwh: np.ndarray,
    *,
    timezone: str,
    carry_in: Carry | None = None,
    threads: int = 1,
) -> tuple[MonthBills, Carry]:
    """Bills of one month for all customers of ``tariff``.

    Parameters
    ----------
    tariff : the customers' tariff
    index : UTC starts of the month's consecutive 15-minute intervals [n_intervals]
    import_kwh, export_kwh : energy per customer and interval, kWh [n_customers, n_intervals];
        NaN in import is refused, NaN in export counts as no export
    timezone : the site's time zone (schedules are in local time)
    carry_in : the carry of the month before (None: nothing carried)
    threads : threads for the pass over the readings (1 in a Dask partition)

    Returns
    -------
    (MonthBills, Carry) : the month's lines and the carry for the next month

    Raises
    ------
    AmountError : some customers' lines are not finite or beyond ``AMOUNT_MAX`` (``rows``
        names them); bill the others without them
    """
    plan = month_plan(tariff, index, timezone)
    imp, exp = _checked(import_kwh, export_kwh, index)
    with np.errstate(over="ignore", invalid="ignore"):  # what overflows is refused, by customer
        return _month(tariff, plan, index, imp, exp, carry_in, threads)


def _month(
    tariff: Tariff,
    plan: MonthPlan,
    index: pd.DatetimeIndex,
    imp: np.ndarray,
    exp: np.ndarray,
    carry_in: Carry | None,
    threads: int,
) -> tuple[MonthBills, Carry]:
    n_c, n_p = imp.shape[0], plan.buy.shape[0]
    before = (plan.month - 2) % 12 + 1
    carry = carry_in if carry_in is not None else Carry.zeros(n_c, n_p, month=before)
    if carry.month != before or carry.surplus_kwh.shape != (n_c, n_p):
        raise ValueError(
            f"carry_in is of month {carry.month} with {carry.surplus_kwh.shape} rows x periods; "
            f"the bills of month {plan.month} need the carry of month {before} for {n_c} "
            f"customers x {n_p} energy periods"
        )
    basa = tariff.dgrules == "Buy All Sell All"
    sums, exp = _run_sums(plan, tariff, imp, exp, index, threads)
    run_max = sums.peak
    flat_peak = np.maximum(run_max.max(axis=1), 0.0) / INTERVAL_H
    lines: list[LineArray] = []
    settle: list[LineArray] = []  # true-up credits: after the minimums, as in SAM
    energy, load_energy, true_up, out = _energy(
        tariff, plan, imp, exp, sums, flat_peak, carry, lines, settle
    )
    demand_tou = np.zeros(n_c)
    for p in plan.demand_present:
        peak = np.maximum(run_max[:, plan.run_demand == p].max(axis=1), 0.0) / INTERVAL_H
        label = f"demand, period {p + 1}"
        demand_tou += _demand(plan.tou_max[p], plan.tou_rate[p], peak, label, lines)
    demand_flat = _demand(plan.flat_max, plan.flat_rate, flat_peak, "demand", lines)
    fixed = np.full(n_c, plan.fixed)
    if plan.fixed:
        rate = plan.fixed / plan.fixed_quantity
        lines.insert(0, _line("fixed charge", plan.fixed_unit, plan.fixed_quantity, rate, fixed))
    base = np.maximum(load_energy + demand_flat + demand_tou + fixed, 0.0)
    minimum = np.maximum(plan.min_month - base, 0.0) if plan.min_month else np.zeros(n_c)
    if plan.min_month:
        lines.append(_line("minimum charge adjustment", "month", 1.0, minimum, minimum))
    year_bill = carry.year_bill + base
    if plan.month == 12:
        annual = np.maximum(plan.min_year - year_bill, 0.0) if plan.min_year else np.zeros(n_c)
        if plan.min_year:
            lines.append(_line("annual minimum charge adjustment", "year", 1.0, annual, annual))
        minimum = minimum + annual
        year_bill = np.zeros(n_c)
    lines += settle
    total = energy + demand_flat + demand_tou + fixed + minimum - true_up
    components = {
        "energy": energy,
        "demand_flat": demand_flat,
        "demand_tou": demand_tou,
        "fixed": fixed,
        "minimum": minimum,
        "true_up": true_up,
        "total": total,
    }
    _refuse_unbillable(lines, n_c)
    cents = np.array([to_cents(ln.amount) for ln in lines]).reshape(len(lines), n_c)
    if plan.min_month and not basa:  # the bill meets the minimum to the cent
        k = next(i for i, ln in enumerate(lines) if ln.description == "minimum charge adjustment")
        short = to_cents(np.full(n_c, plan.min_month)) - np.maximum(cents[:k].sum(axis=0), 0)
        cents[k] = np.where(minimum > 0, np.maximum(short, 0), 0)
        lines[k] = _line("minimum charge adjustment", "month", 1.0, cents[k] / 100, minimum)
    carry_out = Carry(
        month=plan.month,
        surplus_kwh=out[0],
        excess_kwh=out[1],
        credit=out[2],
        year_bill=year_bill,
    )
    return MonthBills(plan=plan, lines=tuple(lines), cents=cents, components=components), carry_out


def _checked(
    import_kwh: np.ndarray, export_kwh: np.ndarray, index: pd.DatetimeIndex
) -> tuple[np.ndarray, np.ndarray]:
    imp = np.asarray(import_kwh, dtype=np.float64)
    exp = np.asarray(export_kwh, dtype=np.float64)
    if imp.ndim != 2 or imp.shape != exp.shape or imp.shape[1] != len(index):
        raise ValueError(
            f"import {imp.shape} and export {exp.shape} must both be [customers x "
            f"{len(index)} intervals]"
        )
    return imp, exp


def rows_dot(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``a @ b`` for customers' rows ``a`` [n_customers, k], each row summed in one fixed order.

    A matrix product is not used: BLAS chooses its kernel by the matrices' shapes, so a customer's
    sum would change in its last bits with how many customers share the matrix (a partition of
    the customers on a worker against all of them in process), and so would an issued bill's
    record of what it carries to the next month."""
    if b.ndim == 1:
        out: np.ndarray = (a * b).sum(axis=1)
    else:
        out = (a[:, :, None] * b[None, :, :]).sum(axis=1)
    return out


def _run_sums(
    plan: MonthPlan,
    tariff: Tariff,
    imp: np.ndarray,
    exp: np.ndarray,
    index: pd.DatetimeIndex,
    threads: int,
) -> tuple[RunSums, np.ndarray]:
    """Run sums and the export used; NaN is looked for in the sums (small), then in the
    readings."""
    basa = tariff.dgrules == "Buy All Sell All"
    sums = reduce_runs(plan.starts, imp, exp, separate_meters=basa, threads=threads)
    if plan.buy_rt is None and _finite(sums).all():
        return sums, exp
    missing = np.isnan(imp)
    if missing.any():
        row, col = np.argwhere(missing)[0]
        raise ValueError(
            f"no validated import reading for {index[col].isoformat()} (customer row {row}): "
            "run VEE first"
        )
    if np.isnan(exp).any():  # a missing export reading counts as no export
        exp = np.nan_to_num(exp, nan=0.0)  # a copy: the caller's readings stay as they are
        sums = reduce_runs(plan.starts, imp, exp, separate_meters=basa, threads=threads)
    _refuse_infinite(_finite(sums), imp, exp, index)
    return sums, exp


def _finite(sums: RunSums) -> np.ndarray:
    """Customers whose run sums are all finite [n_customers] (small: runs, not readings)."""
    ok: np.ndarray = np.isfinite(sums.drawn).all(axis=1) & np.isfinite(sums.given).all(axis=1)
    out: np.ndarray = ok & np.isfinite(sums.net).all(axis=1) & np.isfinite(sums.peak).all(axis=1)
    return out


def _line(
    description: str, unit: str, quantity: object, rate: object, amount: np.ndarray
) -> LineArray:
    n = amount.shape[0]
    return LineArray(
        description=description,
        unit=unit,
        quantity=np.broadcast_to(np.asarray(quantity, dtype=float), (n,)),
        rate=np.broadcast_to(np.asarray(rate, dtype=float), (n,)),
        amount=amount,
    )


def _tier_parts(total: np.ndarray, top: np.ndarray) -> np.ndarray:
    """[n, tiers] share of ``total`` [n] in each tier with upper bounds ``top`` [n|1, tiers]."""
    top = np.broadcast_to(top, (total.shape[0], top.shape[-1]))
    low = np.concatenate([np.zeros((top.shape[0], 1)), top[:, :-1]], axis=1)
    parts: np.ndarray = np.clip(total[:, None], low, top) - low
    return parts


def _demand(
    top: np.ndarray, rate: np.ndarray, peak_kw: np.ndarray, label: str, lines: list[LineArray]
) -> np.ndarray:
    if top.size == 0:
        return np.zeros(peak_kw.shape[0])
    parts = _tier_parts(peak_kw, top[None, :])
    for t in range(top.size):
        name = label if top.size == 1 else f"{label}, tier {t + 1}"
        lines.append(_line(name, "kW", parts[:, t], rate[t], parts[:, t] * rate[t]))
    charge = rows_dot(parts, rate)
    return charge


def _labels(tariff: Tariff, plan: MonthPlan, p: int, t: int) -> str:
    label = "energy" if plan.buy.shape[0] == 1 else f"energy, period {p + 1}"
    return label if plan.buy.shape[1] == 1 else f"{label}, tier {t + 1}"


def _tier_lines(
    tariff: Tariff,
    plan: MonthPlan,
    kwh: np.ndarray,
    prices: np.ndarray,
    suffix: str,
    sign: float,
    lines: list[LineArray],
) -> np.ndarray:
    """Lines for kWh per [customer, period, tier]; returns the money per customer."""
    money = np.zeros(kwh.shape[0])
    if not tariff.energyratestructure:
        return money
    for p in plan.energy_present:
        for t in range(prices.shape[1]):
            label = _labels(tariff, plan, int(p), t) + suffix
            amount = sign * kwh[:, p, t] * prices[p, t]
            lines.append(_line(label, "kWh", sign * kwh[:, p, t], prices[p, t], amount))
            money += amount
    return money


def _time_order(run_kwh: np.ndarray, top: np.ndarray, onehot: np.ndarray) -> np.ndarray:
    """kWh per [customer, period, tier] when tiers fill with the month's cumulative kWh."""
    after = np.cumsum(run_kwh, axis=1)
    before = after - run_kwh
    top = np.broadcast_to(top, (run_kwh.shape[0], top.shape[-1]))
    out = np.empty((run_kwh.shape[0], onehot.shape[1], top.shape[1]))
    low = np.zeros((run_kwh.shape[0], 1))
    for t in range(top.shape[1]):
        high = top[:, t : t + 1]
        in_tier = np.clip(after, low, high) - np.clip(before, low, high)
        out[:, :, t] = rows_dot(in_tier, onehot)
        low = high
    return out


def _energy(
    tariff: Tariff,
    plan: MonthPlan,
    imp: np.ndarray,
    exp: np.ndarray,
    sums: RunSums,
    flat_peak: np.ndarray,
    carry: Carry,
    lines: list[LineArray],
    settle: list[LineArray],
) -> tuple[np.ndarray, np.ndarray, np.ndarray, tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """(energy charge, load-side energy charge, true-up credit, (surplus, excess, credit))."""
    n_c = imp.shape[0]
    zero = np.zeros(n_c)
    keep = (np.zeros_like(carry.surplus_kwh), zero, zero)
    if plan.buy_rt is not None and plan.sell_rt is not None:
        charge, credit = rows_dot(imp, plan.buy_rt), rows_dot(exp, plan.sell_rt)
        for label, kwh, money, sign in (
            ("energy at real-time prices", imp.sum(axis=1), charge, 1.0),
            ("export at real-time prices", exp.sum(axis=1), credit, -1.0),
        ):
            average = np.divide(money, kwh, out=np.zeros(n_c), where=kwh != 0)
            lines.append(_line(label, "kWh", sign * kwh, average, sign * money))
        return charge - credit, charge - credit, zero, keep
    top = plan.tier_max[None, :] * (flat_peak[:, None] if plan.tier_per_kw else 1.0)
    true_up_month = plan.month == tariff.nm_credit_month
    if tariff.dgrules == "Net Metering":
        period_net = rows_dot(sums.net, plan.energy_onehot)
        position = rows_dot(carry.surplus_kwh, plan.rollover) - period_net  # > 0: kWh in credit
        use = np.maximum(-position, 0.0)
        total = use.sum(axis=1)
        share = use / np.where(total > 0, total, 1.0)[:, None]
        kwh = share[:, :, None] * _tier_parts(total, top)[:, None, :]
        charge = _tier_lines(tariff, plan, kwh, plan.buy, "", 1.0, lines)
        excess = np.maximum(carry.excess_kwh - period_net.sum(axis=1), 0.0)
        surplus = np.maximum(position, 0.0)
        if not true_up_month:
            return charge, charge, zero, (surplus, excess, zero)
        paid = excess * tariff.nm_yearend_sell_rate
        if tariff.nm_yearend_sell_rate:
            settle.append(
                _line(
                    "net metering true-up credit",
                    "kWh",
                    -excess,
                    tariff.nm_yearend_sell_rate,
                    -paid,
                )
            )
        return charge, charge, paid, keep
    # SAM sizes the generation meter's tiers (buy all, sell all) without the kW of demand
    sell_top = plan.tier_max[None, :] if tariff.dgrules == "Buy All Sell All" else top
    bought = _time_order(sums.drawn, top, plan.energy_onehot)
    sold = _time_order(sums.given, sell_top, plan.energy_onehot)
    charge = _tier_lines(tariff, plan, bought, plan.buy, "", 1.0, lines)
    if tariff.dgrules != "Net Billing Hourly":
        credit = _tier_lines(tariff, plan, sold, plan.sell, ", export credit", -1.0, lines)
        load_side = charge if tariff.dgrules == "Buy All Sell All" else charge + credit
        return charge + credit, load_side, zero, keep
    earned = np.einsum("cpt,pt->c", sold, plan.sell)
    energy = charge - carry.credit
    if tariff.nb_apply_credit_current_month:
        energy, earned = energy - earned, zero
    left = earned + np.maximum(-energy, 0.0)
    energy = np.maximum(energy, 0.0)
    applied = energy - charge
    lines.append(_line("export credit applied", "currency", 1.0, applied, applied))
    if not true_up_month:
        return energy, energy, zero, (keep[0], zero, left)
    paid = zero if tariff.nb_credit_expire else left
    if not tariff.nb_credit_expire:
        settle.append(_line("net billing true-up credit", "currency", 1.0, -paid, -paid))
    return energy, energy, paid, keep
