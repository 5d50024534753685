"""SunSpec controls: the register writes that carry one of our commands to a device, checked
against its ratings before anything is written, with their revert timeout and their readback.

Commands (our vocabulary) and the models that carry them, 700-series first:

- ``p_limit_pct`` (% of ``WMax``): 704 ``WMaxLimPct`` + ``WMaxLimPctEna``; 123 ``WMaxLimPct`` +
  ``WMaxLim_Ena`` (not for storage, whose rates 124 sets).
- ``p_set_kw`` (storage; kW, positive discharges): 704 ``WSet`` in W with ``WSetMod`` WATTS (or
  ``WSetPct`` of ``WMax`` with ``WSetMod`` W_MAX_PCT) + ``WSetEna``; 124 ``OutWRte``/``InWRte``
  in % of ``WChaMax`` + ``StorCtl_Mod``.
- ``pf_set`` (power factor; positive over-excited, negative under-excited): 704 ``PFWInj.PF``
  + ``PFWInj.Ext`` + ``PFWInjEna``; 123 ``OutPFSet`` (signed) + ``OutPFSet_Ena``.
- ``connected`` (0 or 1): 123 ``Conn``.

A control counts where the device implements its points (they read a value). A plan's
``requests()`` are the Modbus writes in the order to send them: the revert timeout
first (so that the device reverts if the platform falls silent), then the value, then its
enable. Read ``readback`` back and ask ``confirms(registers)``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field

from openmeg.core.errors import CommandError
from openmeg.der import sunspec_map as ssm
from openmeg.der.sunspec_catalogue import Ratings
from openmeg.protocols.sunspec import DeviceMap, encode, to_raw

Write = tuple[int, tuple[int, ...]]
"""One write request: the first register's address and the registers."""


@dataclass(frozen=True, kw_only=True)
class ControlPlan:
    """The writes of one command, and how to confirm them."""

    device: str
    point: str
    value: float
    model: int
    writes: tuple[Write, ...]
    revert: tuple[Write, ...] = ()
    revert_s: int | None = None
    """Seconds after which the device reverts unless written again; ``None``: it does not."""
    expected: Mapping[int, int] = field(default_factory=dict)

    def requests(self) -> list[tuple[int, list[int]]]:
        """Write requests in order: revert timeout, value, enable."""
        return [(a, list(regs)) for a, regs in (*self.revert, *self.writes)]

    @property
    def readback(self) -> list[tuple[int, int]]:
        """``(address, count)`` spans to read back after writing."""
        return [(a, len(regs)) for a, regs in (*self.revert, *self.writes)]

    def confirms(self, registers: Mapping[int, int]) -> bool:
        """Whether registers read back (by address) hold what was written."""
        return all(registers.get(a) == v for a, v in self.expected.items())


def commandable(dmap: DeviceMap, family: str) -> dict[str, tuple[int, str]]:
    """Our commandable points a device serves: point -> (model, the SunSpec point set)."""
    out: dict[str, tuple[int, str]] = {}
    if _has(dmap, 704, "WMaxLimPct", "WMaxLimPctEna"):
        out["p_limit_pct"] = (704, "WMaxLimPct")
    elif family != "storage" and _has(dmap, 123, "WMaxLimPct", "WMaxLim_Ena"):
        out["p_limit_pct"] = (123, "WMaxLimPct")  # a battery's rates are 124's to set
    if _has(dmap, 123, "Conn"):
        out["connected"] = (123, "Conn")
    if family == "storage":
        if _has(dmap, 704, "WSet", "WSetMod", "WSetEna"):
            out["p_set_kw"] = (704, "WSet")
        elif _has(dmap, 704, "WSetPct", "WSetMod", "WSetEna"):
            out["p_set_kw"] = (704, "WSetPct")
        elif _has(dmap, 124, "OutWRte", "InWRte", "StorCtl_Mod"):
            out["p_set_kw"] = (124, "OutWRte")
    if _has(dmap, 704, "PFWInj.PF", "PFWInj.Ext", "PFWInjEna"):
        out["pf_set"] = (704, "PFWInj.PF")
    elif _has(dmap, 123, "OutPFSet", "OutPFSet_Ena"):
        out["pf_set"] = (123, "OutPFSet")
    return out


_UNWRITTEN = frozenset({(124, "OutWRte"), (124, "InWRte"), (124, "StorCtl_Mod")})
"""Setpoints that may read "not implemented" until a master first writes them."""


def _has(dmap: DeviceMap, model: int, *names: str) -> bool:
    """Whether the device serves ``model`` and implements ``names`` and their scale factors
    (they read a value; 124's rates and mode may read "not implemented" until first written)."""
    if not dmap.serves(model):
        return False
    block = dmap.block(model)
    for name in names:
        if name not in block.points:
            return False
        if (model, name) not in _UNWRITTEN and dmap.raw(model, name) is None:
            return False
        sf = block.points[name].sf
        if sf is not None and dmap.raw(model, sf) is None:
            return False
    return True


def _implemented(dmap: DeviceMap, model: int, name: str) -> bool:
    """Whether an optional point (a revert setting) reads implemented, so it may be written."""
    return _has(dmap, model, name) and dmap.raw(model, name) is not None


class _Builder:
    """Collects writes, encoding each by its point's type and scale factor."""

    def __init__(self, device: str, dmap: DeviceMap, model: int) -> None:
        self.device, self.dmap, self.model = device, dmap, model
        self.writes: list[tuple[int, list[int]]] = []
        self.revert: list[tuple[int, list[int]]] = []

    def raw(self, name: str, raw: int, *, revert: bool = False) -> None:
        block = self.dmap.block(self.model)
        try:
            regs = encode(block.point(name), raw)
        except ValueError as err:
            raise CommandError(f"{self.device}: {self.model}.{name}: {err}") from None
        target = self.revert if revert else self.writes
        target.append((block.address_of(name), regs))

    def value(self, name: str, value: float, *, revert: bool = False) -> None:
        self.raw(name, to_raw(value, self.dmap.scale_factor(self.model, name)), revert=revert)

    def optional(self, name: str, value: float) -> None:
        """A revert setting, written only where the device implements it."""
        if _implemented(self.dmap, self.model, name):
            self.value(name, value, revert=True)

    def plan(self, point: str, value: float, revert_s: int | None) -> ControlPlan:
        writes = tuple((a, tuple(r)) for a, r in _merged(self.writes))
        revert = tuple((a, tuple(r)) for a, r in _merged(self.revert))
        expected = {a + i: v for a, regs in (*revert, *writes) for i, v in enumerate(regs)}
        return ControlPlan(
            device=self.device,
            point=point,
            value=value,
            model=self.model,
            writes=writes,
            revert=revert,
            revert_s=revert_s if revert else None,
            expected=expected,
        )


def _merged(writes: list[tuple[int, list[int]]]) -> list[tuple[int, list[int]]]:
    """Writes that follow each other in the map joined into one request, order kept."""
    out: list[tuple[int, list[int]]] = []
    for address, regs in writes:
        if out and out[-1][0] + len(out[-1][1]) == address:
            out[-1] = (out[-1][0], out[-1][1] + regs)
        else:
            out.append((address, list(regs)))
    return out


def plan_command(
    device: str,
    dmap: DeviceMap,
    family: str,
    ratings: Ratings,
    point: str,
    value: float,
    *,
    revert_s: int | None = None,
) -> ControlPlan:
    """The writes that set our ``point`` to ``value`` on a device; ``CommandError`` (before
    anything is written) when the device does not serve the point or the value is not finite
    or outside the device's ratings. ``revert_s``: ask the device to revert after so many
    seconds without a new write, where it serves a revert timeout."""
    served = commandable(dmap, family)
    if point not in served:
        offered = ", ".join(sorted(served)) or "none"
        raise CommandError(f"{device} cannot be commanded {point!r}; it serves: {offered}")
    if not math.isfinite(value):
        raise CommandError(f"{device}/{point} needs a finite number, got {value}")
    if revert_s is not None and not 1 <= revert_s <= 0xFFFE:
        raise CommandError(f"a revert timeout is 1 to 65534 s, not {revert_s}")
    model, name = served[point]
    b = _Builder(device, dmap, model)
    if point == "p_limit_pct":
        _limit(b, value, revert_s)
    elif point == "connected":
        if value not in (0.0, 1.0):
            raise CommandError(f"{device}/connected is 0 (disconnect) or 1 (connect), not {value}")
        if revert_s is not None and _implemented(dmap, 123, "Conn_RvrtTms"):
            b.raw("Conn_RvrtTms", revert_s, revert=True)
        b.raw("Conn", int(value))
    elif point == "p_set_kw":
        _setpoint(b, name, value, ratings, revert_s)
    else:
        _power_factor(b, value, ratings, revert_s)
    return b.plan(point, value, revert_s)


def _limit(b: _Builder, pct: float, revert_s: int | None) -> None:
    if not 0.0 <= pct <= 100.0:
        raise CommandError(f"{b.device}/p_limit_pct is 0 .. 100 % of WMax, not {pct}")
    if b.model == 704:
        if revert_s is not None and _implemented(b.dmap, 704, "WMaxLimPctRvrtTms"):
            b.optional("WMaxLimPctRvrt", 100.0)
            b.optional("WMaxLimPctEnaRvrt", 0)
            b.raw("WMaxLimPctRvrtTms", revert_s, revert=True)
        b.value("WMaxLimPct", pct)
        b.raw("WMaxLimPctEna", 1)
    else:
        if revert_s is not None and _implemented(b.dmap, 123, "WMaxLimPct_RvrtTms"):
            b.raw("WMaxLimPct_RvrtTms", revert_s, revert=True)
        b.value("WMaxLimPct", pct)
        b.raw("WMaxLim_Ena", 1)


def _setpoint(b: _Builder, name: str, p_kw: float, r: Ratings, revert_s: int | None) -> None:
    charge, discharge = r.w_charge_max_w, r.w_discharge_max_w
    if charge is None or discharge is None or charge <= 0 or discharge <= 0:
        raise CommandError(
            f"{b.device} tells no charge and discharge rating (702, 802, 124 or 120): "
            "a setpoint cannot be checked, so none is written"
        )
    if not -charge / 1000.0 <= p_kw <= discharge / 1000.0:
        raise CommandError(
            f"{b.device}/p_set_kw is {-charge / 1000.0:g} .. {discharge / 1000.0:g} kW "
            f"(its charge and discharge ratings; positive discharges), not {p_kw}"
        )
    if b.model == 124:
        w_cha_max = b.dmap.value(124, "WChaMax") or 0.0
        values = ssm.storage_setpoint(p_kw, w_cha_max)
        if revert_s is not None and _implemented(b.dmap, 124, "InOutWRte_RvrtTms"):
            b.raw("InOutWRte_RvrtTms", revert_s, revert=True)
        b.value("OutWRte", values["OutWRte"])
        b.value("InWRte", values["InWRte"])
        b.raw("StorCtl_Mod", int(values["StorCtl_Mod"]))
        return
    if revert_s is not None and _implemented(b.dmap, 704, "WSetRvrtTms"):
        b.optional("WSetRvrt" if name == "WSet" else "WSetPctRvrt", 0.0)
        b.optional("WSetEnaRvrt", 0)
        b.raw("WSetRvrtTms", revert_s, revert=True)
    mode = b.dmap.block(704).point("WSetMod")
    if name == "WSet":
        b.raw("WSetMod", mode.symbol("WATTS"))
        b.value("WSet", p_kw * 1000.0)
    else:
        if r.w_max_w is None or r.w_max_w <= 0:
            raise CommandError(f"{b.device} tells no WMax: a percent setpoint cannot be scaled")
        b.raw("WSetMod", mode.symbol("W_MAX_PCT"))
        b.value("WSetPct", p_kw * 1000.0 / r.w_max_w * 100.0)
    b.raw("WSetEna", 1)


def _power_factor(b: _Builder, pf: float, r: Ratings, revert_s: int | None) -> None:
    if not 0.0 < abs(pf) <= 1.0:
        raise CommandError(f"{b.device}/pf_set is -1 .. -0 or 0 .. 1 (not 0), not {pf}")
    floor = r.pf_min_over if pf > 0 else r.pf_min_under
    if floor is not None and abs(pf) < floor:
        side = "over" if pf > 0 else "under"
        raise CommandError(
            f"{b.device}/pf_set {pf}: the device is rated down to {floor} {side}-excited"
        )
    if b.model == 704:
        ext = b.dmap.block(704).point("PFWInj.Ext")
        if revert_s is not None and _implemented(b.dmap, 704, "PFWInjRvrtTms"):
            b.optional("PFWInjEnaRvrt", 0)
            b.raw("PFWInjRvrtTms", revert_s, revert=True)
        b.value("PFWInj.PF", abs(pf))
        b.raw("PFWInj.Ext", ext.symbol("OVER_EXCITED" if pf > 0 else "UNDER_EXCITED"))
        b.raw("PFWInjEna", 1)
    else:
        if revert_s is not None and _implemented(b.dmap, 123, "OutPFSet_RvrtTms"):
            b.raw("OutPFSet_RvrtTms", revert_s, revert=True)
        b.value("OutPFSet", pf)
        b.raw("OutPFSet_Ena", 1)
