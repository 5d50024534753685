"""Double-auction clearing at a uniform price, hand-computed."""

import numpy as np
import pytest

from openmeg.market.clearing import BID, OFFER, clear, settle


def orders(*rows: tuple[int, int, float, float]) -> tuple[np.ndarray, ...]:
    """``(participant, side, price, kWh)`` rows as arrays."""
    a = np.array(rows, dtype=float)
    return a[:, 0].astype(int), a[:, 1].astype(int), a[:, 2], a[:, 3]


def test_no_trade_when_every_bid_is_below_every_offer() -> None:
    _, side, price, qty = orders((1, BID, 0.10, 5), (2, BID, 0.12, 5), (3, OFFER, 0.15, 5))
    r = clear(side, price, qty)
    assert r.price is None and r.volume_kwh == 0.0 and r.filled_kwh.tolist() == [0, 0, 0]


def test_partial_fill_of_the_marginal_orders() -> None:
    # bids 0.30 x 4, 0.20 x 5, 0.10 x 3; offers 0.05 x 3, 0.15 x 4, 0.25 x 6
    # units 1-3: 0.30 vs 0.05; 4: 0.30 vs 0.15; 5-7: 0.20 vs 0.15; 8-9: 0.20 vs 0.25 -> stop at 7
    _, side, price, qty = orders(
        (1, BID, 0.30, 4),
        (2, BID, 0.20, 5),
        (3, BID, 0.10, 3),
        (4, OFFER, 0.05, 3),
        (5, OFFER, 0.15, 4),
        (6, OFFER, 0.25, 6),
    )
    r = clear(side, price, qty)
    assert r.volume_kwh == 7.0
    assert r.price == pytest.approx((0.20 + 0.15) / 2)
    assert r.filled_kwh.tolist() == [4, 3, 0, 3, 4, 0]


def test_ties_go_to_the_earlier_order() -> None:
    _, side, price, qty = orders((1, OFFER, 0.10, 3), (2, OFFER, 0.10, 3), (3, BID, 0.20, 4))
    r = clear(side, price, qty)
    assert r.filled_kwh.tolist() == [3, 1, 4] and r.price == pytest.approx(0.15)


def test_energy_and_money_balance_across_prosumers_and_the_utility() -> None:
    rng = np.random.default_rng(4)
    n = 400
    participant = rng.integers(0, 60, n)
    side = rng.choice([BID, OFFER], n)
    price = rng.uniform(0.02, 0.40, n).round(3)
    qty = rng.uniform(0.1, 5.0, n).round(2)
    r = clear(side, price, qty)
    assert r.volume_kwh > 0
    assert r.filled_kwh[side == BID].sum() == pytest.approx(r.volume_kwh)
    assert r.filled_kwh[side == OFFER].sum() == pytest.approx(r.volume_kwh)
    # every filled bid pays at most its price, every filled offer gets at least its price
    assert np.all(price[(side == BID) & (r.filled_kwh > 0)] >= r.price - 1e-12)
    assert np.all(price[(side == OFFER) & (r.filled_kwh > 0)] <= r.price + 1e-12)
    s = settle(participant, side, qty, r, utility_buy=0.30, utility_sell=0.05)
    assert s.local_kwh.sum() == pytest.approx(0.0, abs=1e-9)  # local energy balances
    # what the participants pay in all equals what the utility is paid for its net sales
    net_utility = side * (qty - r.filled_kwh)
    utility_money = np.where(net_utility > 0, net_utility * 0.30, net_utility * 0.05).sum()
    assert s.money.sum() == pytest.approx(utility_money, abs=1e-9)


def test_bad_orders_are_refused() -> None:
    with pytest.raises(ValueError, match="non-negative"):
        clear(np.array([BID]), np.array([0.1]), np.array([-1.0]))
    with pytest.raises(ValueError, match=r"\+1 \(bid\) or -1"):
        clear(np.array([2]), np.array([0.1]), np.array([1.0]))
