"""The local market's settlement on the validated series, a local day at a time.

The clearing stays in real time (``local_market``: it is trading): after each interval the
prosumers' positions from the readings as they came are cleared at one price, and the energy
each traded locally is firm. The money is settled later, on the one validated series that
bills, revenue and trading accounts read: once VEE has validated a prosumer's local day
(``vee_status`` holds the raw revision of each of its meter's channels as they are now), the
day is settled. Per interval, the energy traded locally at the clearing price, and what the
validated position (import minus export, kWh) differs from it with the utility at its prices
(bought at ``buy``, sold at ``sell``): so a reading that was missing, estimated or corrected
when the interval cleared is traded with the utility. A settlement is stored as revision 1;
when late readings change a validated day, VEE validates it again and the day is re-settled:
a new revision, whole, with the difference to the one before; a revision is never changed
(the table refuses UPDATE and DELETE) and a re-settlement that changes nothing stores nothing.
Money is rounded to the cent once per part (local, utility), and the parts add up to the total.
"""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal

import numpy as np
import numpy.typing as npt
import sqlalchemy as sa

from openmeg.core.store import append_only, metadata

FloatArray = npt.NDArray[np.float64]

p2p_day_settlements = sa.Table(
    "p2p_day_settlements",
    metadata,
    sa.Column("site", sa.String(64), nullable=False),
    sa.Column("day", sa.String(10), nullable=False),
    sa.Column("customer", sa.String(64), nullable=False),
    sa.Column("revision", sa.Integer, nullable=False),
    sa.Column("position_kwh", sa.Float, nullable=False),
    sa.Column("local_kwh", sa.Float, nullable=False),
    sa.Column("utility_kwh", sa.Float, nullable=False),
    sa.Column("local_cents", sa.BigInteger, nullable=False),
    sa.Column("utility_cents", sa.BigInteger, nullable=False),
    sa.Column("money_cents", sa.BigInteger, nullable=False),
    sa.Column("difference_cents", sa.BigInteger, nullable=False),
    sa.Column("basis", sa.String(128), nullable=False),
    sa.Column("settled_at", sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint("site", "day", "customer", "revision"),
)
"""A prosumer's settlement of a local day (ISO date in the site's time zone), revision 1, 2,
...: energy (kWh, + bought, - sold), money in cents (+ paid, - received), ``difference_cents``
this revision's money minus the previous revision's (its whole money on revision 1), and
``basis``: the raw revisions VEE had validated that it was made from."""

_REFUSAL = "a settlement is never changed: a re-settlement stores a new revision"
append_only(p2p_day_settlements, _REFUSAL)


def imbalance_money(
    position_kwh: FloatArray,
    local_kwh: FloatArray,
    clearing_price: FloatArray,
    buy: FloatArray,
    sell: FloatArray,
) -> tuple[FloatArray, FloatArray, FloatArray]:
    """The money of each prosumer's intervals: the local trade and the rest with the utility.

    Parameters
    ----------
    position_kwh : float64 [n_customers, n_intervals], validated import minus export (kWh);
        NaN counts as nothing metered (0).
    local_kwh : float64 [n_customers, n_intervals], bought (+) or sold (-) on the local market
        when the interval cleared (kWh; 0 where the prosumer did not trade).
    clearing_price : float64 [n_intervals], the interval's uniform price (per kWh; NaN where
        nothing traded).
    buy, sell : float64 [n_intervals], the utility's prices of the interval (per kWh).

    Returns
    -------
    utility_kwh : float64 [n_customers, n_intervals], bought (+) from or sold (-) to the
        utility: the position minus the local trade (kWh).
    local_money, utility_money : float64 [n_customers, n_intervals], paid (+) or received (-).
    """
    position = np.nan_to_num(np.asarray(position_kwh, float))
    local = np.nan_to_num(np.asarray(local_kwh, float))
    utility = position - local
    local_money = local * np.nan_to_num(np.asarray(clearing_price, float))
    utility_money = np.where(utility > 0, utility * buy, utility * sell)
    return utility, local_money, utility_money


def cents(amount: float) -> int:
    """An amount of money in cents, rounded half up once (from its shortest decimal form)."""
    c = (Decimal(repr(float(amount))) * 100).quantize(Decimal(1), rounding=ROUND_HALF_UP)
    return int(c)
