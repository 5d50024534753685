"""Points: the one vocabulary of openmeg, ``site/device/name`` with value, unit, time and quality.

A device kind declares its points once, as a table of frozen ``PointSpec`` descriptions.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]*$")


class Quality(StrEnum):
    """How far a value can be trusted."""

    GOOD = "good"
    ESTIMATED = "estimated"
    STALE = "stale"
    INVALID = "invalid"


class Access(StrEnum):
    """Whether a point can be commanded."""

    READ = "r"
    READ_WRITE = "rw"


@dataclass(frozen=True, kw_only=True, slots=True)
class PointId:
    """The address of a point: ``site/device/name``."""

    site: str
    device: str
    name: str

    def __post_init__(self) -> None:
        for part, label in ((self.site, "site"), (self.device, "device"), (self.name, "name")):
            if not _NAME.match(part):
                raise ValueError(
                    f"point {label} {part!r} must be letters, digits, '_', '-' or '.', "
                    "starting with a letter or digit"
                )

    @classmethod
    def parse(cls, text: str) -> PointId:
        """Read ``site/device/name``."""
        parts = text.split("/")
        if len(parts) != 3:
            raise ValueError(f"point id {text!r} must be site/device/name")
        return cls(site=parts[0], device=parts[1], name=parts[2])

    def __str__(self) -> str:
        return f"{self.site}/{self.device}/{self.name}"


@dataclass(frozen=True, kw_only=True, slots=True)
class PointSpec:
    """What a device kind says of one of its points, once.

    ``register`` and ``data_type`` describe where the value lives on the wire (SunSpec Modbus);
    ``scale`` multiplies the raw value; ``low``/``high`` bound a commanded value.
    """

    name: str
    unit: str
    description: str
    access: Access = Access.READ
    register: int | None = None
    data_type: str = "float32"
    scale: float = 1.0
    low: float | None = None
    high: float | None = None

    def check_command(self, value: float) -> None:
        """Raise ``ValueError`` naming the accepted range when ``value`` cannot be written."""
        if self.access is not Access.READ_WRITE:
            raise ValueError(f"point {self.name!r} is read-only")
        if value != value:  # NaN
            raise ValueError(f"point {self.name!r} needs a number, got NaN")
        if (self.low is not None and value < self.low) or (
            self.high is not None and value > self.high
        ):
            unit = "" if self.unit == "1" else f" {self.unit}"
            raise ValueError(
                f"{value}{unit} is out of range for {self.name!r}: "
                f"accepted {self.low} .. {self.high}{unit}"
            )


@dataclass(frozen=True, kw_only=True, slots=True)
class Point:
    """One value of one point at one instant."""

    id: PointId
    value: float
    unit: str
    ts: datetime
    quality: Quality = Quality.GOOD


UNIT_OF_NAME = {
    "p_kw": "kW",
    "p_set_kw": "kW",
    "import_kw": "kW",
    "heat_kw": "kW",
    "heat_demand_kw": "kW",
    "import_kwh": "kWh",
    "export_kwh": "kWh",
    "energy_kwh": "kWh",
    "energy_in_kwh": "kWh",
    "soc": "1",
    "on": "1",
    "mode": "1",
    "frequency_hz": "Hz",
    "temperature_c": "degC",
    "vibration_mm_s": "mm/s",
    "noise_db": "dB(A)",
    "duration_ms": "ms",
    "utility_available": "1",
    "switch_closed": "1",
    "switch_command": "1",
    "switch_kind": "1",
    "fault_passed": "1",
    "connected": "1",
    "p_limit_pct": "%",
    "pf_set": "1",
    "voltage_v": "V",
    "voltage_min_pu": "pu",
    "voltage_max_pu": "pu",
    "line_loading_max_pct": "%",
}
"""The unit of each point name used across openmeg: one vocabulary end to end."""


MPPT_UNITS = {"dc_a": "A", "dc_v": "V", "dc_kw": "kW", "dc_kwh": "kWh"}
"""Per-module DC points of an inverter's MPPT trackers: ``mppt<n>_<name>``, n from 1."""
_MPPT = re.compile(r"^mppt[1-9][0-9]*_(dc_a|dc_v|dc_kw|dc_kwh)$")


def unit_of(name: str) -> str:
    """The unit of a point name; raises ``KeyError`` for a name outside the vocabulary."""
    mppt = _MPPT.match(name)
    if mppt:
        return MPPT_UNITS[mppt.group(1)]
    try:
        return UNIT_OF_NAME[name]
    except KeyError:
        raise KeyError(
            f"point name {name!r} is not in the vocabulary (openmeg.core.points)"
        ) from None


MODE_NAMES = {0: "grid", 1: "island", 2: "blackout"}
"""Values of the ``pcc/mode`` point."""
