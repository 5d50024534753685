"""Automated power trading with a known price series: the battery charges and discharges in
exactly the expected intervals, and the accounts match a hand computation to the cent."""

from decimal import Decimal

import numpy as np
import pytest

from openmeg.customer.trading import ReferencePrices, accounting, trading_requests
from openmeg.sim.physics.battery import battery_step

PURCHASE = np.array([0.10, 0.11, 0.20, 0.35, 0.40, 0.30, 0.05, 0.20])
SALE = np.array([0.08, 0.09, 0.18, 0.30, 0.32, 0.26, 0.02, 0.10])
HOURS = np.arange(8)


def _run(requests: np.ndarray) -> np.ndarray:
    """A 10 kWh, 5 kW battery (lossless for the hand computation) from 50 % in hourly steps."""
    soc, out = 0.5, []
    for req in requests:
        p, soc = battery_step(soc, float(req), 1.0, 10.0, 5.0, 5.0, 1.0, 1.0, 0.1, 0.9)
        out.append(p)
    return np.array(out)


def test_charges_and_discharges_in_exactly_the_expected_hours() -> None:
    refs = [ReferencePrices(purchase=0.12, sale=0.25)]
    req = trading_requests(PURCHASE, SALE, HOURS, refs, p_charge_max_kw=5, p_discharge_max_kw=5)
    assert req.tolist() == [-5, -5, 0, 5, 5, 5, -5, 0]
    # the battery's limits: 4 kWh of room at first, 3 kWh above its minimum after hour 3
    p = _run(req)
    assert p.tolist() == pytest.approx([-4, 0, 0, 5, 3, 0, -5, 0])
    acc = accounting(
        np.clip(-p, 0, None), np.clip(p, 0, None), PURCHASE, SALE, incentive_per_kwh_sold=0.01
    )
    # purchases 4 x 0.10 + 5 x 0.05 = 0.65; sales 5 x 0.30 + 3 x 0.32 = 2.46; incentive 8 x 0.01
    assert (acc.purchases, acc.sales, acc.incentives) == (
        Decimal("0.65"),
        Decimal("2.46"),
        Decimal("0.08"),
    )
    assert acc.net == Decimal("1.89")


def test_reference_prices_per_time_window() -> None:
    refs = [
        ReferencePrices(purchase=0.12, sale=0.25, from_hour=0, to_hour=6),
        ReferencePrices(purchase=0.03, sale=0.25, from_hour=6, to_hour=24),
    ]
    req = trading_requests(PURCHASE, SALE, HOURS, refs, p_charge_max_kw=5, p_discharge_max_kw=5)
    assert req.tolist() == [-5, -5, 0, 5, 5, 5, 0, 0]  # at 06:00 0.05 is above the day's 0.03


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"purchase": -0.01, "sale": 0.2}, "must not be negative"),
        ({"purchase": "cheap", "sale": 0.2}, "must be a number"),
        ({"purchase": 0.3, "sale": 0.2}, "below the sale reference"),
        ({"purchase": 0.1, "sale": 0.2, "from_hour": 20, "to_hour": 6}, "time window"),
    ],
)
def test_bad_reference_prices_are_refused(kwargs: dict, message: str) -> None:  # type: ignore[type-arg]
    with pytest.raises(ValueError, match=message):
        ReferencePrices(**kwargs)


def test_nothing_is_traded_on_missing_prices() -> None:
    with pytest.raises(ValueError, match="trading holds"):
        trading_requests(
            np.array([0.1, np.nan]),
            np.array([0.1, 0.1]),
            np.array([0, 1]),
            [ReferencePrices(purchase=0.12, sale=0.25)],
            p_charge_max_kw=5,
            p_discharge_max_kw=5,
        )
