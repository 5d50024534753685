"""The login limiter's policy, on a clock of its own: per pair, per address, a name's ceiling
that slows without locking anyone out, and a bounded table."""

from __future__ import annotations

from openmeg.api.login_limit import LoginLimiter


def test_a_pair_is_locked_after_its_attempts_for_the_window() -> None:
    lim = LoginLimiter(attempts=3, window_s=100.0)
    for t in (0.0, 1.0, 2.0):
        assert lim.retry_after("ann", "a", now=t) == 0
        lim.failed("ann", "a", now=t)
    assert lim.retry_after("ann", "a", now=3.0) == 97.0  # until the oldest leaves the window
    assert lim.retry_after("ann", "b", now=3.0) == 0  # another address is not
    assert lim.retry_after("bob", "a", now=3.0) == 0  # nor another name
    assert lim.retry_after("ann", "a", now=100.5) == 0
    lim.failed("ann", "a", now=101.0)
    lim.succeeded("ann", "a")
    assert lim.retry_after("ann", "a", now=101.5) == 0


def test_an_address_spraying_names_is_locked() -> None:
    lim = LoginLimiter(attempts=5, per_address=4, window_s=100.0)
    for i in range(4):
        lim.failed(f"user{i}", "a", now=float(i))
    assert lim.retry_after("someone-else", "a", now=4.0) == 96.0
    assert lim.retry_after("someone-else", "b", now=4.0) == 0


def test_a_name_past_its_ceiling_is_slowed_not_locked() -> None:
    lim = LoginLimiter(attempts=5, per_address=50, ceiling=6, window_s=100.0, slow_s=2.0)
    for i in range(6):  # six guessers, one try each
        lim.failed("ann", f"g{i}", now=float(i))
    assert lim.retry_after("ann", "g0", now=10.0) == 90.0  # a guesser: out for the window
    assert lim.retry_after("ann", "owner", now=10.0) == 0  # the owner's address: may try
    assert lim.retry_after("ann", "g9", now=10.5) == 1.5  # the next new address: waits
    assert lim.retry_after("ann", "owner", now=12.0) == 0
    assert lim.retry_after("bob", "owner", now=12.0) == 0  # other names untouched
    assert lim.retry_after("ann", "anyone", now=106.0) == 0  # the window passed


def test_the_table_keeps_the_newest_keys_within_its_bound() -> None:
    lim = LoginLimiter(attempts=2, max_keys=100)
    for i in range(100_000):
        lim.failed(f"n{i}", f"a{i}", now=0.0)
    assert lim.tracked() == 300
    lim.failed("n99999", "a99999", now=0.0)
    assert lim.retry_after("n99999", "a99999", now=0.0) == 300.0
    lim.failed("n0", "a0", now=0.0)  # evicted long ago: counts from one again
    assert lim.retry_after("n0", "a0", now=0.0) == 0
