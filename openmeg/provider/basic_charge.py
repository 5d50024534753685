"""The basic (capacity) charge of an aggregate building shared among its owners (Y.2071
clause 10.3, Appendix V). Pure functions; money in the currency's smallest unit (cents).

Allocation rule, with ``share_weight`` = a (0..1, default 0.5):

- a part ``a`` of the charge follows the ownership shares: the capacity each owner holds;
- the rest follows use of the contracted capacity: of it, the fraction ``min(1, P / C)``
  (``P`` the sum of the owners' peak demands, ``C`` the contracted power) is shared by peak
  demand, and what stays unused of the capacity is shared by ownership again.

An owner present on ``d`` of the month's ``D`` days takes part with share x d / D (and their
peak over those days); the part of absent days falls to all owners by the rule above. Each
owner's peak demand is the largest of their hourly-average demands. Cents are rounded by the
largest-remainder method (ties to the earlier owner id), so the allocations add up to the
building's charge exactly.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction

import pandas as pd


@dataclass(frozen=True, kw_only=True)
class OwnerMonth:
    """One owner's month: ownership share, days present, peak demand (kW)."""

    owner: str
    share: float
    days_present: int
    peak_kw: float


@dataclass(frozen=True, kw_only=True)
class Allocation:
    owner: str
    cents: int
    share_part_cents: float
    peak_part_cents: float


def peak_demand_kw(interval_kwh: pd.Series, timezone: str) -> tuple[float, pd.Timestamp | None]:
    """The largest hourly-average demand (kW) of 15-minute energies, and the local hour it
    began. An hour counts when all its intervals are there (estimated ones included)."""
    if interval_kwh.empty:
        return 0.0, None
    utc = interval_kwh.index.tz_convert("UTC")
    # each interval's local clock hour, as the UTC instant it began (the hour repeated when the
    # clocks go back is two hours; a zone half an hour off UTC has its own hours)
    offset = utc.tz_convert(timezone).tz_localize(None) - utc.tz_localize(None)
    hour = (utc + offset).floor("h") - offset
    hourly = interval_kwh.groupby(hour)
    full = hourly.count() == 4
    energy = hourly.sum()[full]
    if energy.empty:
        return 0.0, None
    at = pd.Timestamp(energy.idxmax()).tz_convert(timezone)
    return float(energy.max()), at


def _exact(x: float) -> Fraction:
    """The decimal value as written (0.2 is one fifth, not its nearest binary fraction)."""
    return Fraction(repr(float(x)))


def largest_remainder(total_cents: int, weights: list[Fraction], keys: list[str]) -> list[int]:
    """Split ``total_cents`` in proportion to ``weights``, exactly, by largest remainders."""
    total_w = sum(weights)
    if total_w <= 0:
        raise ValueError("the weights add up to nothing: no one to charge")
    exact = [Fraction(total_cents) * w / total_w for w in weights]
    floors = [int(e) for e in exact]
    left = total_cents - sum(floors)
    order = sorted(range(len(exact)), key=lambda i: (-(exact[i] - floors[i]), keys[i]))
    for i in order[:left]:
        floors[i] += 1
    return floors


def allocate(
    owners: list[OwnerMonth],
    *,
    charge_cents: int,
    contracted_kw: float,
    days_in_month: int,
    share_weight: float = 0.5,
) -> list[Allocation]:
    """Each owner's part of the building's basic charge, adding up exactly to ``charge_cents``."""
    if not 0.0 <= share_weight <= 1.0:
        raise ValueError(f"share_weight {share_weight} must lie between 0 and 1")
    if contracted_kw <= 0 or days_in_month <= 0:
        raise ValueError("contracted power and days in the month must be positive")
    if not owners:
        raise ValueError("a building needs owners to share its charge")
    a = Fraction(share_weight)
    presence = [
        Fraction(o.share) * Fraction(min(o.days_present, days_in_month), days_in_month)
        for o in owners
    ]
    total_presence = sum(presence)
    peaks = [_exact(max(o.peak_kw, 0.0)) for o in owners]
    total_peak = sum(peaks)
    used = min(Fraction(1), total_peak / _exact(contracted_kw)) if total_peak > 0 else Fraction(0)
    by_share = a + (1 - a) * (1 - used)
    by_peak = (1 - a) * used
    weights = []
    share_parts, peak_parts = [], []
    for p_share, p_peak in zip(presence, peaks, strict=True):
        s = by_share * p_share / total_presence if total_presence > 0 else Fraction(0)
        k = by_peak * p_peak / total_peak if total_peak > 0 else Fraction(0)
        weights.append(s + k)
        share_parts.append(float(s * charge_cents))
        peak_parts.append(float(k * charge_cents))
    cents = largest_remainder(charge_cents, weights, [o.owner for o in owners])
    return [
        Allocation(owner=o.owner, cents=c, share_part_cents=s, peak_part_cents=k)
        for o, c, s, k in zip(owners, cents, share_parts, peak_parts, strict=True)
    ]
