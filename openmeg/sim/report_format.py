"""How the study report writes its numbers and names: units, rounding, local times, names for
people. ``1,234 kWh``, ``0.893 p.u.``, ``62.9 %``, ``2026-12-09 09:45 EST``."""

from __future__ import annotations

from typing import Any

import pandas as pd

from openmeg.core.site import Site

KIND_NAMES = {
    "pv": "PV",
    "wind": "Wind turbine",
    "load": "Load",
    "shiftable_load": "Shiftable load",
    "ev_charger": "EV charger",
    "battery": "Battery",
    "chp": "CHP",
    "fuel_cell": "Fuel cell",
    "heat_storage": "Heat store",
    "heat_load": "Heat load",
}


def device_name(site: Site, device_id: str) -> str:
    """A device's name for people: its ``name``, else its kind and its owner's name."""
    d = site.device(device_id)
    if d.name:
        return str(d.name)
    kind = KIND_NAMES.get(d.kind, d.kind)
    owners = {c.id: c.name for c in site.customers}
    return f"{kind}, {owners.get(d.owner, d.owner)}"


def decimals_for(x: float) -> int:
    """Decimals that keep 3 significant figures of small values and none of large ones."""
    a = abs(x)
    if a >= 100 or a == 0:
        return 0
    if a >= 10:
        return 1
    if a >= 1:
        return 2
    return 3


def number(x: float, decimals: int | None = None) -> str:
    """``x`` with thousands separators, ``decimals`` (or :func:`decimals_for`) decimals."""
    d = decimals_for(x) if decimals is None else decimals
    text = f"{x:,.{d}f}"
    return text.lstrip("-") if text.strip("-0.,") == "" else text  # no "-0.000"


def with_unit(x: float | None, unit: str, decimals: int | None = None) -> str:
    """``1,234 kWh``; ``–`` when there is no value."""
    if x is None:
        return "–"
    return f"{number(x, decimals)} {unit}"


def kwh(x: float) -> str:
    return with_unit(x, "kWh")


def kw(x: float) -> str:
    return with_unit(x, "kW")


def pu(x: float | None) -> str:
    return with_unit(x, "p.u.", 3)


def percent(fraction: float) -> str:
    """A fraction as a percentage with one decimal: ``0.6286 -> 62.9 %``."""
    return f"{fraction * 100:.1f} %"


def hours(x: float) -> str:
    return with_unit(x, "h", 1)


def local_time(iso: str | None, timezone: str) -> str:
    """An ISO 8601 instant in the site's time zone, with the date and the zone's abbreviation."""
    if iso is None:
        return "–"
    return f"{pd.Timestamp(iso).tz_convert(timezone):%Y-%m-%d %H:%M %Z}"


def get_path(data: dict[str, Any], key: str) -> Any:
    """``data["a"]["b"]`` for ``key`` ``"a/b"``."""
    value: Any = data
    for part in key.split("/"):
        value = value[int(part)] if isinstance(value, list) else value[part]
    return value
