"""The building automation system (BAS) of a premises (Y.2071 clause 9.3): its equipment and the
points each piece of equipment shows on the wire, as BACnet/IP objects.

This is the one description that the simulated field (which serves the points) and the platform
(the premises' energy management, which reads and commands them) share. A BAS is one BACnet
device per premises; each piece of equipment owns a block of ``BLOCK`` object instances, and a
point's instance is ``block * BLOCK + offset``. A point's BACnet object name is
``<equipment>.<point>`` (e.g. ``ahu-1.fan_speed_pct``), and its openmeg point id is
``<site>/<equipment>/<point>``.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Literal

from pydantic import Field, model_validator

from openmeg.core.site_sections import Frozen

BLOCK = 100
"""Object instances per piece of equipment."""


class ObjectType(StrEnum):
    """The BACnet object types a BAS point is served as (their names in ASHRAE 135)."""

    ANALOG_INPUT = "analog-input"
    ANALOG_VALUE = "analog-value"
    BINARY_INPUT = "binary-input"
    BINARY_VALUE = "binary-value"
    MULTI_STATE_VALUE = "multi-state-value"


@dataclass(frozen=True, kw_only=True, slots=True)
class BasPoint:
    """One point of a kind of equipment.

    ``unit`` is openmeg's unit; ``bacnet_units`` the BACnet engineering units (ASHRAE 135
    names; "noUnits" for binary and multi-state points). A writable point accepts commands
    in ``low..high`` (binary: 0 or 1; multi-state: ``1..len(states)``, BACnet counts from 1).
    """

    name: str
    object_type: ObjectType
    offset: int
    unit: str
    bacnet_units: str
    writable: bool = False
    low: float = 0.0
    high: float = 1.0
    states: tuple[str, ...] = ()

    @property
    def binary(self) -> bool:
        """True for a binary input or value (0 or 1)."""
        return self.object_type in (ObjectType.BINARY_INPUT, ObjectType.BINARY_VALUE)


def _ai(name: str, offset: int, unit: str, units: str) -> BasPoint:
    return BasPoint(
        name=name, object_type=ObjectType.ANALOG_INPUT, offset=offset, unit=unit, bacnet_units=units
    )


def _av(name: str, offset: int, unit: str, units: str, low: float, high: float) -> BasPoint:
    return BasPoint(
        name=name,
        object_type=ObjectType.ANALOG_VALUE,
        offset=offset,
        unit=unit,
        bacnet_units=units,
        writable=True,
        low=low,
        high=high,
    )


def _bi(name: str, offset: int) -> BasPoint:
    return BasPoint(
        name=name,
        object_type=ObjectType.BINARY_INPUT,
        offset=offset,
        unit="",
        bacnet_units="noUnits",
    )


def _bv(name: str, offset: int) -> BasPoint:
    return BasPoint(
        name=name,
        object_type=ObjectType.BINARY_VALUE,
        offset=offset,
        unit="",
        bacnet_units="noUnits",
        writable=True,
    )


def _msv(name: str, offset: int, states: tuple[str, ...]) -> BasPoint:
    return BasPoint(
        name=name,
        object_type=ObjectType.MULTI_STATE_VALUE,
        offset=offset,
        unit="",
        bacnet_units="noUnits",
        writable=True,
        low=1,
        high=len(states),
        states=states,
    )


EquipmentKind = Literal["ahu", "heat_pump", "lighting_zone", "fire_alarm", "security"]

POINTS: dict[str, tuple[BasPoint, ...]] = {
    # an air handling unit: supply fan on a schedule, supply air temperature, filter
    "ahu": (
        _bv("fan_on", 0),
        _av("fan_speed_pct", 1, "%", "percent", 0.0, 100.0),
        _ai("supply_temp_c", 2, "degC", "degreesCelsius"),
        _av("supply_temp_setpoint_c", 3, "degC", "degreesCelsius", 10.0, 26.0),
        _ai("filter_dp_pa", 4, "Pa", "pascals"),
        _ai("fan_kw", 5, "kW", "kilowatts"),
        _ai("space_temp_c", 6, "degC", "degreesCelsius"),
        _av("space_temp_setpoint_c", 7, "degC", "degreesCelsius", 16.0, 28.0),
        _av("occupied_from_h", 8, "h", "hours", 0.0, 24.0),
        _av("occupied_to_h", 9, "h", "hours", 0.0, 24.0),
    ),
    # a heat pump (heats or cools the building's water loop); its COP drifts as it fouls
    "heat_pump": (
        _msv("mode", 0, ("off", "heat", "cool")),
        _av("water_setpoint_c", 1, "degC", "degreesCelsius", 5.0, 55.0),
        _ai("water_temp_c", 2, "degC", "degreesCelsius"),
        _ai("electric_kw", 3, "kW", "kilowatts"),
        _ai("thermal_kw", 4, "kW", "kilowatts"),
        _ai("cop", 5, "", "noUnits"),
        _ai("outdoor_temp_c", 6, "degC", "degreesCelsius"),
    ),
    # a lighting zone with an occupancy sensor and scenes
    "lighting_zone": (
        _bi("occupied", 0),
        _av("level_pct", 1, "%", "percent", 0.0, 100.0),
        _ai("lights_kw", 2, "kW", "kilowatts"),
        _msv("scene", 3, ("off", "dimmed", "normal", "full")),
    ),
    # the fire alarm panel's status (monitored only; never commanded)
    "fire_alarm": (
        _bi("alarm", 0),
        _bi("trouble", 1),
    ),
    # the intrusion alarm system: armed state (commandable) and an intrusion input
    "security": (
        _bv("armed", 0),
        _bi("intrusion", 1),
    ),
}
"""Every kind of BAS equipment and its points, in the order of their offsets."""


def point_of(kind: str, name: str) -> BasPoint:
    """The point ``name`` of equipment ``kind``; ``KeyError`` naming the known ones if none."""
    for p in POINTS[kind]:
        if p.name == name:
            return p
    known = ", ".join(p.name for p in POINTS[kind])
    raise KeyError(f"{kind} has no point {name!r}: it has {known}")


class BasEquipment(Frozen):
    """One piece of equipment on a premises' BAS."""

    id: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_\-]*$", description="equipment id")
    kind: EquipmentKind = Field(description="ahu, heat_pump, lighting_zone, fire_alarm or security")
    name: str = Field("", description="its name for people")
    rated_kw: float = Field(
        0.0, ge=0, le=5000, description="rated electric power [kW] (fan, compressor or lights)"
    )
    cop_nominal: float = Field(3.5, gt=0, le=10, description="heat pump: COP when clean")
    area_m2: float = Field(0.0, ge=0, le=1e6, description="floor area served [m2]")
    serial: str = Field("", description="the maker's serial number (its stable id derives from it)")


class BasSystem(Frozen):
    """The BAS of one premises: one BACnet/IP device at ``host:port``."""

    id: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_\-]*$", description="the BAS's id")
    premises: str = Field(description="the customer or building it serves")
    host: str = Field("127.0.0.1", description="the BACnet/IP device's address")
    port: int = Field(47808, ge=1, le=65535, description="its UDP port (47808 is BACnet's)")
    device_instance: int = Field(
        ge=0, le=4194302, description="the BACnet device object's instance, unique on the network"
    )
    equipment: tuple[BasEquipment, ...] = Field(description="the equipment it controls")

    @model_validator(mode="after")
    def _unique(self) -> BasSystem:
        ids = [e.id for e in self.equipment]
        twice = sorted({i for i in ids if ids.count(i) > 1})
        if twice:
            raise ValueError(f"equipment ids must be unique in a BAS: {', '.join(twice)} twice")
        return self

    def instance_of(self, equipment: str, point: str) -> tuple[ObjectType, int]:
        """The BACnet object (type, instance) serving ``equipment``'s ``point``."""
        for block, e in enumerate(self.equipment):
            if e.id == equipment:
                p = point_of(e.kind, point)
                return p.object_type, block * BLOCK + p.offset
        raise KeyError(f"the BAS {self.id} has no equipment {equipment!r}")

    def objects(self) -> list[tuple[BasEquipment, BasPoint, int]]:
        """Every point of every piece of equipment with its object instance, in instance order."""
        return [
            (e, p, block * BLOCK + p.offset)
            for block, e in enumerate(self.equipment)
            for p in POINTS[e.kind]
        ]
