"""The limit on failed logins: nobody guesses a password quickly, and nobody locks an owner out.

The policy, per window of ``window_s`` seconds (real time):

- a **pair** (name, address) that failed ``attempts`` times is refused until its oldest failure
  leaves the window: one address guesses at most ``attempts`` times per name;
- an **address** that failed ``per_address`` times (whatever names) is refused likewise: one
  address cannot spray many names;
- a **name** that failed ``ceiling`` times from any addresses is *slowed*, not locked: every
  address that has failed for it is refused for the rest of the window, and the others may try
  it at most once per ``slow_s`` between them. A distributed guesser gets one guess per
  ``slow_s`` for the name; its owner, at an address that has not failed, waits ``slow_s`` at
  most, and nobody can lock them out at will (the refusal is keyed on the guesser's addresses;
  an owner who mistyped from an address during the attack waits out the window there, or logs
  in from another).

A success clears the pair only (a guesser's other addresses stay counted). Each table keeps at
most ``max_keys`` keys, the least recently failed evicted first, and each key at most the
failures the rule needs: memory is bounded however many names and addresses are tried.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from typing import TypeVar

Failures = OrderedDict[str, tuple[float, ...]]
"""Per key, the times of its last failures (a tuple: a few dozen bytes a key)."""
V = TypeVar("V")


class LoginLimiter:
    """Failed logins per (name, address), per address and per name, in a sliding window."""

    def __init__(
        self,
        *,
        attempts: int = 5,
        per_address: int = 20,
        ceiling: int = 20,
        window_s: float = 300.0,
        slow_s: float = 2.0,
        max_keys: int = 10_000,
    ) -> None:
        self.attempts, self.per_address, self.ceiling = attempts, per_address, ceiling
        self.window_s, self.slow_s, self.max_keys = window_s, slow_s, max_keys
        self._pairs: Failures = OrderedDict()
        self._addresses: Failures = OrderedDict()
        self._names: Failures = OrderedDict()
        self._slot: OrderedDict[str, float] = OrderedDict()  # a slowed name's last try
        self._lock = threading.Lock()

    def tracked(self) -> int:
        """How many keys the limiter holds now (all tables)."""
        with self._lock:
            tables = (self._pairs, self._addresses, self._names, self._slot)
            return sum(len(t) for t in tables)

    def _recent(self, table: Failures, key: str, now: float) -> tuple[float, ...] | None:
        q = table.get(key)
        if q is None:
            return None
        if q[0] <= now - self.window_s:
            q = tuple(t for t in q if t > now - self.window_s)
            if not q:
                del table[key]
                return None
            table[key] = q
        return q

    def _full_wait(self, table: Failures, key: str, limit: int, now: float) -> float:
        q = self._recent(table, key, now)
        return q[0] + self.window_s - now if q is not None and len(q) >= limit else 0.0

    def retry_after(self, name: str, address: str, now: float | None = None) -> float:
        """Seconds until ``address`` may try ``name`` again (0: now); a try taken counts as
        the slowed name's slot."""
        t = time.monotonic() if now is None else now
        pair = f"{name}\x00{address}"
        with self._lock:
            wait = max(
                self._full_wait(self._pairs, pair, self.attempts, t),
                self._full_wait(self._addresses, address, self.per_address, t),
            )
            if wait > 0 or self._full_wait(self._names, name, self.ceiling, t) <= 0:
                return wait
            mine = self._recent(self._pairs, pair, t)
            if mine is not None:  # this address guessed at a slowed name: out for the window
                return mine[-1] + self.window_s - t
            last = self._slot.get(name)
            if last is not None and t - last < self.slow_s:
                return last + self.slow_s - t
            self._remember(self._slot, name, t)
            return 0.0

    def failed(self, name: str, address: str, now: float | None = None) -> None:
        t = time.monotonic() if now is None else now
        with self._lock:
            self._count(self._pairs, f"{name}\x00{address}", self.attempts, t)
            self._count(self._addresses, address, self.per_address, t)
            self._count(self._names, name, self.ceiling, t)

    def succeeded(self, name: str, address: str) -> None:
        with self._lock:
            self._pairs.pop(f"{name}\x00{address}", None)

    def _count(self, table: Failures, key: str, limit: int, now: float) -> None:
        q = self._recent(table, key, now) or ()
        self._remember(table, key, (*q, now)[-limit:])  # only the last ``limit`` decide

    def _remember(self, table: OrderedDict[str, V], key: str, value: V) -> None:
        table[key] = value
        table.move_to_end(key)
        while len(table) > self.max_keys:
            table.popitem(last=False)
