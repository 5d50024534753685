"""A provider's management message turned into what the device understands (Y.2071 III.3 step 5):
the subscription's check of the device and action, then the BAS point it writes or the points it
reads, with every value checked against the point's range before anything is sent."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from openmeg.core.building_automation import POINTS, point_of
from openmeg.core.errors import CommandError
from openmeg.customer.device_discovery import FoundDevice

ACTION_POINTS: dict[tuple[str, str], str] = {
    ("ahu", "setpoint"): "space_temp_setpoint_c",
    ("ahu", "fan_speed"): "fan_speed_pct",
    ("heat_pump", "setpoint"): "water_setpoint_c",
    ("heat_pump", "mode"): "mode",
    ("lighting_zone", "level"): "level_pct",
    ("lighting_zone", "scene"): "scene",
}
"""The BAS point each action writes on each kind of equipment; ``read`` reads them all."""


class ManagementMessage(BaseModel):
    """One management message from a provider: do ``action`` to ``device`` (with ``value``)."""

    model_config = ConfigDict(frozen=True, extra="forbid", strict=True)
    id: str = Field(min_length=1, max_length=64)
    device: str = Field(pattern=r"^[0-9a-f\-]{36}$")
    action: str = Field(max_length=32)
    value: float | str | None = None


class BasGateway(Protocol):
    """Reads and writes ``<equipment>.<point>`` of a premises' BAS (by its id)."""

    async def read(self, bas: str, names: list[str]) -> dict[str, float]: ...

    async def write(self, bas: str, name: str, value: float) -> None: ...


@dataclass(frozen=True, kw_only=True, slots=True)
class Relay:
    """What one message does on the wire: write ``value`` to ``name`` (or read ``reads``)."""

    device: FoundDevice
    name: str = ""
    value: float = math.nan
    reads: tuple[str, ...] = ()


def parse(plain: bytes) -> ManagementMessage:
    """The message in ``plain`` (JSON); ``CommandError`` saying what is wrong if it is not one."""
    try:
        return ManagementMessage.model_validate_json(plain)
    except ValidationError as err:
        raise CommandError(f"not a management message: {err.errors()[0]['msg']}") from err


def plan(
    msg: ManagementMessage,
    devices: Mapping[str, FoundDevice],
    allowed: Mapping[str, frozenset[str]],
) -> Relay:
    """The relay ``msg`` asks for; ``CommandError`` if the subscription does not allow this
    action on this device, or the value is not one the point takes."""
    device = devices.get(msg.device)
    if device is None:
        raise CommandError(f"the device {msg.device} is not one this subscription was given")
    if msg.action not in allowed.get(msg.device, frozenset()):
        raise CommandError(f"the subscription does not allow {msg.action!r} on {msg.device}")
    if device.protocol != "bacnet":
        raise CommandError(f"{msg.device} is reached over {device.protocol}: only reads relay")
    prefix = f"{device.equipment}."
    if msg.action == "read":
        return Relay(device=device, reads=tuple(prefix + p.name for p in POINTS[device.kind]))
    point_name = ACTION_POINTS.get((device.kind, msg.action))
    if point_name is None:
        raise CommandError(f"a {device.kind} has no {msg.action!r} action")
    point = point_of(device.kind, point_name)
    value = msg.value
    if isinstance(value, str):
        if value not in point.states:
            raise CommandError(f"{point_name} takes one of {', '.join(point.states) or 'numbers'}")
        value = float(point.states.index(value) + 1)
    if value is None or not math.isfinite(value) or not point.low <= value <= point.high:
        raise CommandError(f"{point_name} takes a number in {point.low:g}..{point.high:g}")
    return Relay(device=device, name=prefix + point_name, value=float(value))


async def relay(gateway: BasGateway, r: Relay) -> dict[str, float]:
    """Send ``r`` to the device; the values read back (the written point's, or every point)."""
    if r.reads:
        return await gateway.read(r.device.bas, list(r.reads))
    await gateway.write(r.device.bas, r.name, r.value)
    return await gateway.read(r.device.bas, [r.name])
