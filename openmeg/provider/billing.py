"""Bills as documents of exact decimals, from the array engine in
:mod:`openmeg.provider.bill_matrix` (NREL's reading of URDB tariffs; see there).

Each line's amount is rounded to the cent once (half away from zero) from the array sums, and a
bill's total is the sum of its lines, exactly. ``bill`` makes one customer's bill;
``bill_month`` makes a month's bills for many customers of one tariff at once, with the
net metering and net billing carry-over between months (``carry_in`` / ``carry_out``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal

import numpy as np
import pandas as pd

from openmeg.core.tariff import Tariff
from openmeg.provider.bill_carry import Carry
from openmeg.provider.bill_matrix import INTERVAL_H, AmountError, MonthBills, bill_arrays

__all__ = [
    "INTERVAL_H",
    "Bill",
    "BillLine",
    "Carry",
    "bill",
    "bill_month",
    "bills_from_arrays",
    "interval_index",
]

CENT = Decimal("0.01")


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


def bills_from_arrays(
    month: MonthBills,
    *,
    tariff: str,
    customers: Sequence[str],
    meters: Sequence[str],
    start: pd.Timestamp,
    end: pd.Timestamp,
) -> list[Bill]:
    """The :class:`Bill` of every customer (row) of ``month``; lines with nothing are left out."""
    if len(customers) != month.cents.shape[1] or len(meters) != len(customers):
        raise ValueError(
            f"{len(customers)} customers and {len(meters)} meters for "
            f"{month.cents.shape[1]} rows of readings: give one of each per row"
        )
    quantity = np.round(np.array([ln.quantity for ln in month.lines]), 6) + 0.0  # no -0.0
    quantity = quantity.reshape(len(month.lines), -1)
    rate = np.round(np.array([ln.rate for ln in month.lines]), 6).reshape(len(month.lines), -1)
    shown = (quantity != 0) | (month.cents != 0)
    decimals: dict[float, Decimal] = {}  # the same rates and amounts recur on many bills
    amounts: dict[int, Decimal] = {}

    def dec(x: float) -> Decimal:
        d = decimals.get(x)
        if d is None:
            d = decimals[x] = Decimal(repr(x))
        return d

    def cents(c: int) -> Decimal:
        d = amounts.get(c)
        if d is None:
            d = amounts[c] = Decimal(c) * CENT
        return d

    q_rows, r_rows, c_rows = quantity.T.tolist(), rate.T.tolist(), month.cents.T.tolist()
    labels = [(ln.description, ln.unit) for ln in month.lines]
    bills = []
    for i, (customer, meter) in enumerate(zip(customers, meters, strict=True)):
        q, r, c = q_rows[i], r_rows[i], c_rows[i]
        lines = tuple(
            BillLine(
                description=labels[k][0],
                quantity=Decimal(repr(q[k])),
                unit=labels[k][1],
                rate=dec(r[k]),
                amount=cents(c[k]),
            )
            for k in np.flatnonzero(shown[:, i]).tolist()
        )
        bills.append(
            Bill(customer=customer, meter=meter, start=start, end=end, tariff=tariff, lines=lines)
        )
    return bills


def interval_index(start: pd.Timestamp, end: pd.Timestamp) -> pd.DatetimeIndex:
    """UTC starts of the 15-minute intervals of ``[start, end)``: the ``index`` of ``bill_month``
    (and the columns of the readings arrays for the same period)."""
    return pd.date_range(
        start.tz_convert("UTC"), end.tz_convert("UTC"), freq="15min", inclusive="left"
    )


def bill_month(
    tariff: Tariff,
    index: pd.DatetimeIndex,
    import_kwh: np.ndarray,
    export_kwh: np.ndarray,
    *,
    timezone: str,
    customers: Sequence[str],
    meters: Sequence[str],
    carry_in: Carry | None = None,
    threads: int = 1,
) -> tuple[list[Bill], Carry]:
    """One month's bills for every customer of ``tariff`` and the carry to the next month.

    ``index`` holds the UTC starts of the month's 15-minute intervals; ``import_kwh`` and
    ``export_kwh`` are [customers x intervals] kWh in that order (row i is ``customers[i]``
    on ``meters[i]``); ``carry_in`` is the ``carry_out`` of the month before, or None;
    ``threads`` share the pass over the readings. Raises :class:`AmountError` (``rows`` by
    customer id) when some customers' bills are not finite or beyond ``AMOUNT_MAX``.
    """
    try:
        arrays, carry_out = bill_arrays(
            tariff,
            index,
            import_kwh,
            export_kwh,
            timezone=timezone,
            carry_in=carry_in,
            threads=threads,
        )
    except AmountError as err:  # name the customers, not their rows
        raise AmountError({customers[int(i)]: m for i, m in err.rows.items()}) from err
    start = pd.Timestamp(index[0]).tz_convert(timezone)
    end = (pd.Timestamp(index[-1]) + pd.Timedelta(minutes=15)).tz_convert(timezone)
    bills = bills_from_arrays(
        arrays, tariff=tariff.name, customers=customers, meters=meters, start=start, end=end
    )
    return bills, carry_out


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
    carry_in: Carry | None = None,
) -> Bill:
    """The bill of ``[start, end)`` (a local month); both series are 15-minute energies indexed
    by UTC start."""
    idx = interval_index(start, end)
    imp = import_kwh.reindex(idx).to_numpy(dtype=float)
    if np.isnan(imp).any():
        first = idx[np.isnan(imp)][0]
        raise ValueError(f"no validated import reading for {first.isoformat()}: run VEE first")
    exp = export_kwh.reindex(idx).fillna(0.0).to_numpy(dtype=float)
    arrays, _ = bill_arrays(
        tariff, idx, imp[None, :], exp[None, :], timezone=timezone, carry_in=carry_in
    )
    (one,) = bills_from_arrays(
        arrays, tariff=tariff.name, customers=[customer], meters=[meter], start=start, end=end
    )
    return one
