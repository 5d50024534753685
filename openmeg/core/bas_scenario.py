"""The faults and events a scenario plays on the simulated building automation systems.

Only the simulated field reads them; the platform's efficiency diagnosis has to find the faults
from the points on the wire.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Literal

from pydantic import Field, field_validator, model_validator

from openmeg.core.building_automation import BasSystem
from openmeg.core.site_sections import Frozen

FaultKind = Literal["cop_drift", "fan_after_hours", "lights_empty_zone"]

FAULT_EQUIPMENT: dict[str, str] = {
    "cop_drift": "heat_pump",
    "fan_after_hours": "ahu",
    "lights_empty_zone": "lighting_zone",
}
"""The kind of equipment each kind of fault applies to."""


def _aware(v: datetime | None) -> datetime | None:
    if v is not None and v.tzinfo is None:
        raise ValueError("give a time zone, e.g. 2026-06-15T14:00:00Z")
    return v


class BasFault(Frozen):
    """A fault of one piece of BAS equipment from ``start`` (to ``end``, if given).

    ``magnitude``: for ``cop_drift`` the fraction the COP loses (0.2: COP x 0.8), reached
    ``ramp_days`` after ``start``; for ``fan_after_hours`` the fraction of its occupied speed a
    fan keeps outside the schedule; for ``lights_empty_zone`` the fraction of its occupied level
    a zone keeps with nobody in it.
    """

    equipment: str = Field(description="the equipment's id in its BAS")
    bas: str | None = Field(None, description="the BAS's id (unset: the one with that equipment)")
    kind: FaultKind = Field(description="cop_drift, fan_after_hours or lights_empty_zone")
    magnitude: float = Field(gt=0, le=1, description="how bad the fault is [fraction, 0..1]")
    start: datetime = Field(description="when it begins, with a time zone")
    end: datetime | None = Field(None, description="when it is repaired (unset: never)")
    ramp_days: float = Field(
        0.0, ge=0, le=3650, description="cop_drift: days the COP takes to drift fully [d]"
    )

    @field_validator("start", "end")
    @classmethod
    def _tz(cls, v: datetime | None) -> datetime | None:
        return _aware(v)

    @model_validator(mode="after")
    def _consistent(self) -> BasFault:
        if self.end is not None and self.end <= self.start:
            raise ValueError("end must be after start")
        if self.kind == "cop_drift" and self.magnitude >= 0.9:
            raise ValueError("a cop_drift magnitude must be below 0.9 (0.2: the COP loses 20 %)")
        return self


EventPoint = Literal["alarm", "trouble", "intrusion"]


class BasEvent(Frozen):
    """A fire alarm panel's ``alarm``/``trouble`` or a security system's ``intrusion`` input
    raised from ``start`` to ``end``."""

    equipment: str = Field(description="the fire_alarm or security equipment's id")
    bas: str | None = Field(None, description="the BAS's id (unset: the one with that equipment)")
    point: EventPoint = Field(description="alarm, trouble (fire_alarm) or intrusion (security)")
    start: datetime = Field(description="when it is raised, with a time zone")
    end: datetime = Field(description="when it clears, with a time zone; after start")

    @field_validator("start", "end")
    @classmethod
    def _tz(cls, v: datetime | None) -> datetime | None:
        return _aware(v)

    @model_validator(mode="after")
    def _consistent(self) -> BasEvent:
        if self.end <= self.start:
            raise ValueError("end must be after start")
        return self


def scenario_of(
    systems: Sequence[BasSystem], faults: Sequence[BasFault], events: Sequence[BasEvent]
) -> dict[str, tuple[tuple[BasFault, ...], tuple[BasEvent, ...]]]:
    """Each BAS's own faults and events, by BAS id; ``ValueError`` naming a fault or event
    whose equipment no BAS (or more than one, without ``bas``) has."""
    out: dict[str, tuple[list[BasFault], list[BasEvent]]] = {s.id: ([], []) for s in systems}
    items: list[BasFault | BasEvent] = [*faults, *events]
    for i, item in enumerate(items):
        where = [
            s.id
            for s in systems
            if item.bas in (None, s.id) and any(e.id == item.equipment for e in s.equipment)
        ]
        what = f"bas_faults[{i}]" if i < len(faults) else f"bas_events[{i - len(faults)}]"
        if len(where) != 1:
            found = "no BAS" if not where else f"the BAS {', '.join(where)}: give bas"
            raise ValueError(f"{what}: the equipment {item.equipment!r} is in {found}")
        faults_, events_ = out[where[0]]
        if isinstance(item, BasFault):
            faults_.append(item)
        else:
            events_.append(item)
    return {k: (tuple(f), tuple(e)) for k, (f, e) in out.items()}
