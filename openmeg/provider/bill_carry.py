"""What one month's bills hand to the next month's: kWh and money carried per customer."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True, kw_only=True)
class Carry:
    """The carry-over after the bills of local month ``month`` (1-12), one row per customer.

    Attributes
    ----------
    month : the local month whose bills produced this carry (the next bill is month + 1)
    surplus_kwh : net metering: kWh exported beyond use, per energy period, carried to the same
        period (same time of day) of the next month [n_customers, n_energy_periods]
    excess_kwh : net metering: the year's cumulative net excess, paid at the true-up, kWh
    credit : net billing with carry-over (Net Billing Hourly): export credit not yet used,
        currency
    year_bill : the year's bills before minimums, for an annual minimum charge, currency
    """

    month: int
    surplus_kwh: np.ndarray
    excess_kwh: np.ndarray
    credit: np.ndarray
    year_bill: np.ndarray

    @classmethod
    def zeros(cls, n_customers: int, n_periods: int, *, month: int) -> Carry:
        """Nothing carried (the first month of a customer, or of the tariff)."""
        return cls(
            month=month,
            surplus_kwh=np.zeros((n_customers, n_periods)),
            excess_kwh=np.zeros(n_customers),
            credit=np.zeros(n_customers),
            year_bill=np.zeros(n_customers),
        )

    def row(self, i: int) -> dict[str, object]:
        """Customer ``i``'s carry as plain JSON-ready values (to store with an issued bill)."""
        return {
            "month": self.month,
            "surplus_kwh": [float(x) for x in self.surplus_kwh[i]],
            "excess_kwh": float(self.excess_kwh[i]),
            "credit": float(self.credit[i]),
            "year_bill": float(self.year_bill[i]),
        }

    @classmethod
    def from_rows(cls, rows: Sequence[Mapping[str, object]], *, month: int) -> Carry:
        """Stack stored rows (from :meth:`row`, all of local month ``month``) for the bills."""
        for n, r in enumerate(rows):
            if r["month"] != month:
                raise ValueError(
                    f"carry row {n} is of month {r['month']}, not {month}: pass the carry of the "
                    "month just before the bill"
                )
        return cls(
            month=month,
            surplus_kwh=np.array([r["surplus_kwh"] for r in rows], dtype=float),
            excess_kwh=np.array([r["excess_kwh"] for r in rows], dtype=float),
            credit=np.array([r["credit"] for r in rows], dtype=float),
            year_bill=np.array([r["year_bill"] for r in rows], dtype=float),
        )
