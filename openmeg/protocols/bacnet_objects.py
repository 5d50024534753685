"""The BACnet objects of a BAS point: present-value read live from a source, writes of
present-value checked against the ``BasPoint`` and handed to a command callback."""

from __future__ import annotations

import math
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from bacpypes3.errors import ExecutionError
from bacpypes3.local.analog import AnalogInputObject, AnalogValueObject
from bacpypes3.local.binary import BinaryInputObject, BinaryValueObject
from bacpypes3.local.multistate import MultiStateValueObject
from bacpypes3.primitivedata import Null

from openmeg.core.building_automation import BasEquipment, BasPoint, ObjectType

Values = Callable[[], Mapping[str, float]]
"""Every point's value now, by ``<equipment>.<point>``."""
Write = Callable[[str, float | None, Any], Awaitable[None]]
"""Check and apply a write of ``(<equipment>.<point>, value, priority)`` (value ``None``: a
relinquish, null at a priority); ``ExecutionError`` if refused."""


class _Live:
    """Reads present-value and status-flags from the source (fault: no finite value; in alarm:
    a fire, trouble or intrusion input active); refuses every other write."""

    _point_name: str
    _bas_point: BasPoint
    _values: Values
    _write: Write

    def _refresh(self) -> None:
        value = self._values().get(self._point_name, math.nan)
        finite = isinstance(value, int | float) and math.isfinite(value)
        alarm = bool(finite and self._bas_point.object_type == ObjectType.BINARY_INPUT and value)
        alarm = alarm and self._bas_point.name in ("alarm", "trouble", "intrusion")
        setattr(self, "eventState", "offnormal" if alarm else "normal")  # noqa: B010
        setattr(self, "reliability", "noFaultDetected" if finite else "unreliableOther")  # noqa: B010
        if not finite and (self._bas_point.binary or self._bas_point.states):
            return  # the last state stays, flagged as a fault
        if not finite:
            pv: Any = math.nan
        elif self._bas_point.binary:
            pv = "active" if value else "inactive"
        elif self._bas_point.object_type == ObjectType.MULTI_STATE_VALUE:
            pv = max(1, min(len(self._bas_point.states), round(value)))
        else:
            pv = float(value)
        setattr(self, "presentValue", pv)  # noqa: B010

    async def read_property(self, attr: int | str, index: int | None = None) -> Any:
        """The property, present-value and status-flags as the source has them now."""
        self._refresh()
        return await super().read_property(attr, index)  # type: ignore[misc]

    async def write_property(
        self, attr: int | str, value: Any, index: int | None = None, priority: int | None = None
    ) -> None:
        """Only present-value of a writable point is written, through ``write``."""
        name = attr if isinstance(attr, str) else self._property_identifier_class(attr).attr  # type: ignore[attr-defined]
        if name != "presentValue" or not self._bas_point.writable:
            raise ExecutionError(errorClass="property", errorCode="writeAccessDenied")
        if index is not None or (isinstance(value, Null) and priority is None):
            raise ExecutionError(errorClass="property", errorCode="invalidDataType")
        number = None if isinstance(value, Null) else as_number(self._bas_point, value)
        await self._write(self._point_name, number, priority)


def as_number(point: BasPoint, value: Any) -> float:
    """The number a written BACnet value stands for (binary: 0 or 1)."""
    if point.binary:
        text = str(value)
        if text not in ("active", "inactive"):
            raise ExecutionError(errorClass="property", errorCode="invalidDataType")
        return 1.0 if text == "active" else 0.0
    try:
        return float(value)
    except (TypeError, ValueError) as err:
        raise ExecutionError(errorClass="property", errorCode="invalidDataType") from err


class LiveAnalogInput(_Live, AnalogInputObject):  # type: ignore[misc]
    """An analog input served live."""


class LiveAnalogValue(_Live, AnalogValueObject):  # type: ignore[misc]
    """An analog value served live and written through the BAS."""


class LiveBinaryInput(_Live, BinaryInputObject):  # type: ignore[misc]
    """A binary input served live."""


class LiveBinaryValue(_Live, BinaryValueObject):  # type: ignore[misc]
    """A binary value served live and written through the BAS."""


class LiveMultiStateValue(_Live, MultiStateValueObject):  # type: ignore[misc]
    """A multi-state value served live and written through the BAS."""


CLASS_OF = {
    ObjectType.ANALOG_INPUT: LiveAnalogInput,
    ObjectType.ANALOG_VALUE: LiveAnalogValue,
    ObjectType.BINARY_INPUT: LiveBinaryInput,
    ObjectType.BINARY_VALUE: LiveBinaryValue,
    ObjectType.MULTI_STATE_VALUE: LiveMultiStateValue,
}


def description(equipment: BasEquipment, point: BasPoint) -> str:
    """An object's description: the equipment's name and point, then its kind and serial
    number in brackets (what a BAS scan reads to tell the equipment apart)."""
    serial = f", serial {equipment.serial}" if equipment.serial else ""
    return f"{equipment.name or equipment.id}: {point.name} ({equipment.kind}{serial})"


def live_object(
    equipment: BasEquipment, point: BasPoint, instance: int, *, values: Values, write: Write
) -> _Live:
    """The BACnet object serving ``equipment``'s ``point`` at ``instance``."""
    name = f"{equipment.id}.{point.name}"
    kwargs: dict[str, Any] = {
        "objectIdentifier": (point.object_type.value, instance),
        "objectName": name,
        "description": description(equipment, point),
        "eventState": "normal",
        "reliability": "unreliableOther",
        "outOfService": False,
    }
    if point.binary:
        kwargs["presentValue"] = "inactive"
    elif point.object_type == ObjectType.MULTI_STATE_VALUE:
        kwargs["presentValue"] = 1
        kwargs["numberOfStates"] = len(point.states)
        kwargs["stateText"] = list(point.states)
    else:
        kwargs["presentValue"] = math.nan
        kwargs["units"] = point.bacnet_units
        if point.writable:
            kwargs["minPresValue"], kwargs["maxPresValue"] = point.low, point.high
    if point.object_type == ObjectType.ANALOG_INPUT:
        kwargs["covIncrement"] = 0.0
    if point.object_type == ObjectType.BINARY_INPUT:
        kwargs["polarity"] = "normal"
    obj = CLASS_OF[point.object_type](**kwargs)
    obj._point_name, obj._bas_point, obj._values, obj._write = name, point, values, write
    return obj
