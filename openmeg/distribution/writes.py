"""Setpoints as SunSpec control writes: which registers a command of one of our points becomes
on a discovered device, checked before anything is written.

Model 123 (immediate controls): ``p_limit_pct`` is ``WMaxLimPct`` with ``WMaxLim_Ena``, and a
dispatchable generator's ``p_set_kw`` is the same limit in percent of its rating (a CHP or fuel
cell runs at its enabled limit); ``connected`` is ``Conn``. Model 124 (storage): ``p_set_kw`` is a
rate in percent of ``WChaMax`` (``OutWRte`` discharging, ``InWRte`` charging) enabled in
``StorCtl_Mod``. Each control is written with its revert timeout, so that a device that loses
the platform reverts by itself.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from openmeg.core.errors import CommandError
from openmeg.der import sunspec_map as ssm
from openmeg.distribution.discovery import Discovered
from openmeg.protocols.sunspec import encode, to_raw

Writes = list[tuple[int, list[int]]]
"""``(address, registers)`` of each write request, in order."""


@dataclass(frozen=True, kw_only=True)
class Limits:
    """What the site file's ratings allow a setpoint of one device (kW, discharge positive)."""

    p_min_kw: float
    p_max_kw: float


def _regs(device: Discovered, model: int, name: str, value: float) -> list[int]:
    block = device.map.block(model)
    p = block.model.points[name]
    sf = device.map.scale_factor(model, name) if p.sf else 0
    try:
        return encode(p, to_raw(value, sf))
    except ValueError as err:
        raise CommandError(f"{device.id}: {name} = {value} does not fit the register") from err


def _run(device: Discovered, model: int, values: dict[str, float]) -> tuple[int, list[int]]:
    """One write of consecutive points of ``model`` (``values`` must cover them in order)."""
    block = device.map.block(model)
    points = sorted(values, key=lambda n: block.model.points[n].offset)
    start = block.address_of(points[0])
    regs: list[int] = []
    for name in points:
        if block.address_of(name) != start + len(regs):
            raise CommandError(f"{device.id}: {', '.join(points)} are not consecutive registers")
        regs += _regs(device, model, name, values[name])
    return start, regs


def plan_writes(
    device: Discovered,
    point: str,
    value: float,
    *,
    limits: Limits | None = None,
    revert_s: int = 0,
) -> Writes:
    """The writes that set ``point`` to ``value`` on ``device``; ``CommandError`` (before
    anything is written) when the value is not finite, out of the point's range or of the
    device's ``limits``, or the device serves no control for it."""
    if not math.isfinite(value):
        raise CommandError(f"{device.id}/{point} needs a finite number, got {value}")
    if (
        limits is not None
        and point == "p_set_kw"
        and not (limits.p_min_kw - 1e-9 <= value <= limits.p_max_kw + 1e-9)
    ):
        raise CommandError(
            f"{value} kW is out of {device.id}'s rating: accepted "
            f"{limits.p_min_kw} .. {limits.p_max_kw} kW"
        )
    served = {b.model.id for b in device.models}
    revert = float(max(0, min(int(revert_s), 0xFFFE)))
    if point == "p_set_kw" and ssm.STORAGE in served:
        w_cha_max = device.map.value(ssm.STORAGE, "WChaMax") or 0.0
        if w_cha_max <= 0:
            raise CommandError(f"{device.id} does not tell its WChaMax; cannot scale a setpoint")
        rates = ssm.storage_setpoint(value, w_cha_max)
        if max(rates["OutWRte"], rates["InWRte"]) > 100.0 + 1e-9:
            raise CommandError(
                f"{value} kW is beyond {device.id}'s WChaMax of {w_cha_max / 1000:g} kW"
            )
        return [
            _run(
                device,
                ssm.STORAGE,
                {
                    "OutWRte": rates["OutWRte"],
                    "InWRte": rates["InWRte"],
                    "InOutWRte_WinTms": 0,
                    "InOutWRte_RvrtTms": revert,
                },
            ),
            _run(device, ssm.STORAGE, {"StorCtl_Mod": rates["StorCtl_Mod"]}),
        ]
    if point in ("p_set_kw", "p_limit_pct") and ssm.CONTROLS in served:
        if point == "p_set_kw":
            if limits is None or limits.p_max_kw <= 0:
                raise CommandError(f"{device.id}: a setpoint in kW needs the unit's rating")
            pct = value / limits.p_max_kw * 100.0
        else:
            pct = value
        if not 0.0 <= pct <= 100.0 + 1e-9:
            raise CommandError(f"{device.id}: a power limit of {pct:g} % is out of range 0 .. 100 %")
        return [
            _run(
                device,
                ssm.CONTROLS,
                {
                    "WMaxLimPct": min(pct, 100.0),
                    "WMaxLimPct_WinTms": 0,
                    "WMaxLimPct_RvrtTms": revert,
                    "WMaxLimPct_RmpTms": 0,
                    "WMaxLim_Ena": 1,
                },
            )
        ]
    try:
        p = device.point(point)
    except KeyError as err:
        controls = ", ".join(sorted(p.point for p in device.points if p.writable)) or "none"
        raise CommandError(
            f"{device.id} serves no control for {point!r}; its controls: {controls}"
        ) from err
    if not p.writable:
        raise CommandError(f"{device.id}/{point} is read-only")
    if (p.low is not None and value < p.low) or (p.high is not None and value > p.high):
        raise CommandError(
            f"{value} is out of range for {device.id}/{point}: accepted {p.low} .. {p.high}"
        )
    if p.type.startswith("enum") and value != int(value):
        raise CommandError(f"{device.id}/{point} takes a whole number, got {value}")
    return [(p.address, _regs(device, p.model, p.name, value / p.factor))]
