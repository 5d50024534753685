"""The power trading system (Y.2071 clause 10.1, Appendix III.1): buy and sell automatically at
the prices the user sets, as the market's prices change.

The trading price setting unit holds the user's reference prices (optionally per time window of
the day); the price monitoring unit compares each interval's market prices with them; the
inverter and storage controller asks the storage to charge at its full rating when the purchase
price is at or below the purchase reference, and to discharge at its full rating when the sale
price is at or above the sale reference (the storage applies its own limits); the accounting
server reckons purchases, sales and incentives from the meter's history of energy in and out.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]
CENT = Decimal("0.01")
MAX_REFERENCE_PER_KWH = 5.0
"""The highest reference price taken [currency/kWh]: the bound of the market's prices in the
price book, beyond which no market price ever reaches a reference."""


@dataclass(frozen=True, kw_only=True)
class ReferencePrices:
    """The user's reference prices (currency per kWh), valid from ``from_hour`` to ``to_hour``
    (local, ``to_hour`` excluded; 0 to 24 is all day)."""

    purchase: float
    sale: float
    from_hour: int = 0
    to_hour: int = 24

    def __post_init__(self) -> None:
        for name in ("purchase", "sale"):
            value = getattr(self, name)
            if not isinstance(value, int | float) or isinstance(value, bool) or value != value:
                raise ValueError(f"the {name} reference price must be a number, got {value!r}")
            if value < 0:
                raise ValueError(f"the {name} reference price must not be negative, got {value}")
            if value > MAX_REFERENCE_PER_KWH:
                raise ValueError(
                    f"the {name} reference price must be at most {MAX_REFERENCE_PER_KWH:g} per "
                    f"kWh (market prices never go beyond), got {value:g}"
                )
        if self.purchase >= self.sale:
            raise ValueError(
                "the purchase reference must lie below the sale reference, "
                "or the storage would buy and sell at a loss"
            )
        if not 0 <= self.from_hour < self.to_hour <= 24:
            raise ValueError("a time window runs from_hour < to_hour within 0 .. 24")


def trading_requests(
    purchase_price: FloatArray,
    sale_price: FloatArray,
    local_hour: npt.NDArray[np.int64],
    references: list[ReferencePrices],
    *,
    p_charge_max_kw: float,
    p_discharge_max_kw: float,
) -> FloatArray:
    """Storage power requests per interval (kW, positive discharges to sell, negative charges
    to buy, 0 to hold). The first reference whose window holds the hour applies."""
    buy = np.asarray(purchase_price, dtype=float)
    sell = np.asarray(sale_price, dtype=float)
    if np.isnan(buy).any() or np.isnan(sell).any():
        raise ValueError("a price is missing: trading holds until prices are known")
    request = np.zeros(buy.size)
    decided = np.zeros(buy.size, dtype=bool)
    for ref in references:
        window = (local_hour >= ref.from_hour) & (local_hour < ref.to_hour) & ~decided
        request[window & (buy <= ref.purchase)] = -p_charge_max_kw
        request[window & (buy > ref.purchase) & (sell >= ref.sale)] = p_discharge_max_kw
        decided |= window
    return request


@dataclass(frozen=True, kw_only=True)
class Accounts:
    purchases: Decimal
    sales: Decimal
    incentives: Decimal

    @property
    def net(self) -> Decimal:
        """Earned (+) or spent (-): sales and incentives less purchases."""
        return self.sales + self.incentives - self.purchases

    def floats(self) -> dict[str, float]:
        """The four sums as numbers (for messages and the API)."""
        return {
            "purchases": float(self.purchases),
            "sales": float(self.sales),
            "incentives": float(self.incentives),
            "net": float(self.net),
        }


def accounting(
    import_kwh: FloatArray,
    export_kwh: FloatArray,
    purchase_price: FloatArray,
    sale_price: FloatArray,
    *,
    incentive_per_kwh_sold: float = 0.0,
) -> Accounts:
    """Purchases, sales and incentives from the meter's energy in and out, interval by interval,
    each total rounded half-up to the cent."""

    def money(x: float) -> Decimal:
        return Decimal(repr(float(x))).quantize(CENT, rounding=ROUND_HALF_UP)

    imp = np.asarray(import_kwh, dtype=float)
    exp = np.asarray(export_kwh, dtype=float)
    return Accounts(
        purchases=money(float(np.dot(imp, purchase_price))),
        sales=money(float(np.dot(exp, sale_price))),
        incentives=money(float(exp.sum()) * incentive_per_kwh_sold),
    )
