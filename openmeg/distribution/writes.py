"""Setpoints as SunSpec control writes: what a command of one of our points becomes on a
discovered device, checked against the site file's ratings before anything is written.

The device's own controls (``openmeg.der.sunspec_controls``, through ``Discovered.plan``) carry
``p_limit_pct``, ``connected``, ``pf_set`` and a storage's ``p_set_kw``; a dispatchable
generator's ``p_set_kw`` (a CHP, a fuel cell) is its power limit in percent of its rating, which
it runs at while the limit is enabled. Other writable points (the transfer switch's command) are
written as they are.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from openmeg.core.errors import CommandError
from openmeg.der.sunspec_controls import commandable
from openmeg.distribution.discovery import Discovered
from openmeg.protocols.sunspec import encode, to_raw

WHOLE = frozenset({"switch_command", "connected"})
"""Points that take a whole number (an enumeration: a switch's command, connect/disconnect)."""

Writes = list[tuple[int, list[int]]]
"""``(address, registers)`` of each write request, in order."""


@dataclass(frozen=True, kw_only=True)
class Limits:
    """What the site file's ratings allow a setpoint of one device (kW, discharge positive)."""

    p_min_kw: float
    p_max_kw: float


@dataclass(frozen=True, kw_only=True)
class Planned:
    """The writes of one command and the registers a read-back must find."""

    writes: Writes
    expected: dict[int, int]

    @property
    def readback(self) -> list[tuple[int, int]]:
        return [(a, len(regs)) for a, regs in self.writes]

    def confirms(self, registers: dict[int, int]) -> bool:
        return all(registers.get(a) == v for a, v in self.expected.items())


def plan_writes(
    device: Discovered,
    point: str,
    value: float,
    *,
    limits: Limits | None = None,
    revert_s: int = 0,
) -> Planned:
    """The writes that set ``point`` to ``value`` on ``device``; ``CommandError`` (before
    anything is written) when the value is not finite, out of the point's range or of the
    device's ``limits``, or the device serves no control for it."""
    if not math.isfinite(value):
        raise CommandError(f"{device.id}/{point} needs a finite number, got {value}")
    if point in WHOLE and not float(value).is_integer():
        raise CommandError(f"{device.id}/{point} takes a whole number, got {value}")
    if (
        limits is not None
        and point == "p_set_kw"
        and not (limits.p_min_kw - 1e-9 <= value <= limits.p_max_kw + 1e-9)
    ):
        raise CommandError(
            f"{value} kW is out of {device.id}'s rating: accepted "
            f"{limits.p_min_kw} .. {limits.p_max_kw} kW"
        )
    revert = revert_s if revert_s > 0 else None
    if point == "p_set_kw" and device.family != "storage":
        if limits is None or limits.p_max_kw <= 0:
            raise CommandError(f"{device.id}: a setpoint in kW needs the unit's rating")
        point, value = "p_limit_pct", min(value / limits.p_max_kw * 100.0, 100.0)
    if device.reason is None and point in commandable(device.map, device.family):
        plan = device.plan(point, value, revert_s=revert)
        return Planned(writes=plan.requests(), expected=dict(plan.expected))
    controls = sorted({p.point for p in device.points if p.writable})
    if device.reason is not None:
        raise CommandError(
            f"{device.id} cannot be commanded {point!r}; it is monitored only: {device.reason}"
        )
    if point not in controls:
        listed = f"its controls: {', '.join(controls) or 'none'}"
        if any(p.point == point for p in device.points):
            raise CommandError(f"{device.id}/{point} is read-only; {listed}")
        raise CommandError(f"{device.id} cannot be commanded {point!r}; {listed}")
    p = device.point(point)
    if (p.low is not None and value < p.low) or (p.high is not None and value > p.high):
        raise CommandError(
            f"{value} is out of range for {device.id}/{point}: accepted {p.low} .. {p.high}"
        )
    block = device.map.block(p.model)
    pdef = block.model.points[p.name]
    sf = device.map.scale_factor(p.model, p.name) if pdef.sf else 0
    whole = p.type.startswith(("enum", "uint", "int", "bitfield")) and sf == 0
    if whole and not float(value / p.factor).is_integer():
        raise CommandError(f"{device.id}/{point} takes a whole number, got {value}")
    regs = encode(pdef, to_raw(value / p.factor, sf))
    return Planned(
        writes=[(p.address, regs)], expected={p.address + i: r for i, r in enumerate(regs)}
    )
