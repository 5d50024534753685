"""Equipment that is not DER, as a site file describes it: loads, EV chargers, meters, sensors.

Shared by the platform (customer and distribution domains) and the simulated field, so it lives
with the site file rather than in either; the physics of each is in the scenario
(``openmeg.core.scenario``), which only the simulated field reads.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from openmeg.core.addresses import ModbusAddress
from openmeg.der.ratings import DeviceBase, WiredDevice

ElectricProfile = Literal[
    "h0", "h0_dyn", "g0", "g1", "g2", "g3", "g4", "g5", "g6", "l0", "l1", "l2"
]
HeatProfile = Literal["EFH", "MFH", "GHD", "GKO", "GHA", "GMK", "GBD", "GBH", "GWA", "GGA"]


class Load(DeviceBase):
    """An electric load (its demand profile is in the scenario: ``openmeg.core.scenario``)."""

    kind: Literal["load"] = Field(description="the kind of device: load")
    sheddable: bool = Field(
        True, description="whether under-frequency load shedding may disconnect it"
    )
    shed_priority: int = Field(100, ge=0, description="lower numbers are shed first")

    @model_validator(mode="after")
    def _check(self) -> Load:
        if self.critical and self.sheddable:
            raise ValueError("a critical load cannot be sheddable")
        return self


class ShiftableLoad(DeviceBase):
    """A load that runs ``p_kw`` once a day inside a time window (given in the scenario)."""

    kind: Literal["shiftable_load"] = Field(description="the kind of device: shiftable_load")
    p_kw: float = Field(gt=0, description="power while it runs [kW]")
    shed_priority: int = Field(50, ge=0, description="lower numbers are shed first")


class HeatLoad(DeviceBase):
    """A building's heat demand, served from a heat storage (its profile is in the scenario)."""

    kind: Literal["heat_load"] = Field(description="the kind of device: heat_load")
    heat_storage: str = Field(description="id of the heat storage that serves it")


class EVCharger(DeviceBase):
    """An EV charger (its charging sessions are in the scenario)."""

    kind: Literal["ev_charger"] = Field(description="the kind of device: ev_charger")
    p_max_kw: float = Field(gt=0, description="largest charging power [kW]")
    shed_priority: int = Field(60, ge=0, description="lower numbers are shed first")


class Sensor(WiredDevice):
    """Temperature, vibration and noise of a piece of equipment."""

    kind: Literal["sensor"] = Field(description="the kind of device: sensor")
    watches: str = Field(description="id of the device it is mounted on")


class Meter(BaseModel):
    """A smart meter or sub-meter measuring the net flow of the devices behind it."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str = Field(
        pattern=r"^[A-Za-z0-9][A-Za-z0-9_.\-]*$",
        max_length=64,
        description="the meter's id: letters, digits, _ . -; unique in the site",
    )
    customer: str = Field(description="id of the customer the meter bills (or community)")
    devices: tuple[str, ...] = Field(default=(), description="devices behind this meter")
    parent: str | None = Field(None, description="the main meter of a sub-meter")
    interval_min: Literal[5, 15, 30, 60] = Field(15, description="interval length [min]")
    address: ModbusAddress | None = Field(
        None,
        description=(
            "where the meter answers Modbus TCP, often a unit id behind a gateway (unset: the "
            "simulated field puts every meter behind one gateway port)"
        ),
    )
