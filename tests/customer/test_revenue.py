"""Revenue per device, hand-computed, with a price change inside an interval."""

import numpy as np
import pytest

from openmeg.customer.revenue import interval_prices, revenue, revenue_by_period, revenue_totals


def test_a_price_change_inside_an_interval_counts_for_its_share() -> None:
    # sale price 0.10 from t=0, 0.20 from t=450 s: the first 15-minute interval is half and half
    sell = interval_prices(
        np.array([0.0, 450.0]), np.array([0.10, 0.20]), np.array([0.0, 900.0]), 900.0
    )
    assert sell.tolist() == pytest.approx([0.15, 0.20])
    buy = interval_prices(np.array([0.0]), np.array([0.30]), np.array([0.0, 900.0]), 900.0)
    out = np.array([[1.0, 2.0]])  # kWh out of the device in each interval
    into = np.array([[0.4, 0.0]])  # kWh into it
    per = revenue(out, into, sell, buy)
    # 1 x 0.15 - 0.4 x 0.30 = 0.03; 2 x 0.20 = 0.40
    assert per.tolist() == [pytest.approx([0.03, 0.40])]
    assert revenue_totals(out, into, sell, buy).tolist() == pytest.approx([0.43])
    assert revenue_by_period(per, np.array([0, 1])).tolist() == [pytest.approx([0.03, 0.40])]


def test_schedules_must_cover_the_intervals() -> None:
    with pytest.raises(ValueError, match="before the first scheduled price"):
        interval_prices(np.array([100.0]), np.array([0.1]), np.array([0.0]), 900.0)
    with pytest.raises(ValueError, match="increasing change times"):
        interval_prices(np.array([0.0, 0.0]), np.array([0.1, 0.2]), np.array([0.0]), 900.0)
