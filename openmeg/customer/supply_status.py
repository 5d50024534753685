"""The supply status of a premises (Y.2071 clause 9.3): which of the MEG's supplies are live
(grid, PV, wind, battery, CHP, fuel cell), where the premises draws its power from now, and
whether the MEG is islanded.

A pure function of what the platform already knows: the PCC's mode and the latest points of
the DERs (the operator's picture, ``DerManagementServer.snapshot``). Powers in kW, positive
into the MEG's bus (generation, discharge, import; ``core.units``). The MEG's bus is one pool:
a premises draws from it in the shares its supplies feed it, after its own DERs.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

from openmeg.core.errors import OpenMegError
from openmeg.core.site import Site

SUPPLY_KINDS = ("pv", "wind", "battery", "chp", "fuel_cell")
"""The kinds of DER that supply power."""
LIVE_KW = 0.01
"""A supply feeding more than this is live [kW]."""


@dataclass(frozen=True, kw_only=True)
class Supply:
    """One supply of the MEG now: the grid or a kind of DER."""

    supply: str
    p_kw: float
    """What it feeds into the MEG's bus now [kW] (grid: the import at the PCC)."""
    live: bool
    """Whether it supplies now (the grid: whether the MEG is connected to it)."""
    own_kw: float = 0.0
    """Of ``p_kw``, what the premises' own devices of this kind feed [kW]."""
    devices: tuple[str, ...] = ()


@dataclass(frozen=True, kw_only=True)
class SupplyStatus:
    """Where a premises is supplied from now."""

    premises: str
    mode: str
    """The MEG's mode at the PCC: grid, island or blackout."""
    islanded: bool
    supplies: tuple[Supply, ...]
    shares: dict[str, float]
    """The fraction of the MEG's supply each live supply gives now [-], summing to 1."""
    own_kw: float
    """What the premises' own DERs feed now [kW]."""


def owners_of(site: Site, premises: str) -> frozenset[str]:
    """The customers a premises (a customer or an aggregate building) stands for."""
    if any(c.id == premises for c in site.customers):
        return frozenset({premises})
    if any(b.id == premises for b in site.buildings):
        return frozenset(c.id for c in site.customers if c.building == premises)
    raise OpenMegError(f"{premises!r} is not a customer or building of the site")


def _kw(values: Mapping[str, float], name: str) -> float:
    v = values.get(name, 0.0)
    return float(v) if isinstance(v, int | float) and math.isfinite(v) else 0.0


def supply_status(
    site: Site, premises: str, *, mode: str, devices: Mapping[str, Mapping[str, float]]
) -> SupplyStatus:
    """The supply status of ``premises`` from the PCC's ``mode`` and each device's latest
    points (``devices[device][point]``; a missing or non-finite value counts as 0 kW)."""
    if mode not in ("grid", "island", "blackout"):
        raise OpenMegError(f"the PCC's mode is grid, island or blackout, not {mode!r}")
    owners = owners_of(site, premises)
    grid_kw = _kw(devices.get("pcc", {}), "p_kw") if mode == "grid" else 0.0
    supplies = [Supply(supply="grid", p_kw=grid_kw, live=mode == "grid")]
    for kind in SUPPLY_KINDS:
        of_kind = site.devices_of(kind)
        if not of_kind:
            continue
        feeds = {d.id: max(0.0, _kw(devices.get(d.id, {}), "p_kw")) for d in of_kind}
        own = sum(feeds[d.id] for d in of_kind if d.owner in owners)
        total = sum(feeds.values())
        supplies.append(
            Supply(
                supply=kind,
                p_kw=total,
                live=total > LIVE_KW,
                own_kw=own,
                devices=tuple(d for d, kw in feeds.items() if kw > LIVE_KW),
            )
        )
    feeding = {s.supply: max(0.0, s.p_kw) for s in supplies if s.live and s.p_kw > LIVE_KW}
    total = sum(feeding.values())
    shares = {k: kw / total for k, kw in feeding.items()} if total > 0 else {}
    return SupplyStatus(
        premises=premises,
        mode=mode,
        islanded=mode != "grid",
        supplies=tuple(supplies),
        shares=shares,
        own_kw=sum(s.own_kw for s in supplies),
    )
