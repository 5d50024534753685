"""Equipment that is not DER, as a site file describes it: loads, EV chargers, meters, sensors.

Shared by the platform (customer and distribution domains) and the simulated field, so it lives
with the site file rather than in either.
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
    """An electric load following a BDEW standard load profile (demandlib)."""

    kind: Literal["load"] = Field(description="the kind of device: load")
    annual_kwh: float = Field(gt=0, description="energy per year [kWh]")
    profile: ElectricProfile = Field(
        description=(
            "BDEW standard load profile: h0, h0_dyn (households), g0..g6 (trade), l0..l2 (farms)"
        )
    )
    power_factor: float = Field(0.95, gt=0, le=1, description="power factor [0..1]")
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
    """A load that runs ``p_kw`` for ``run_min`` once a day inside a local time window."""

    kind: Literal["shiftable_load"] = Field(description="the kind of device: shiftable_load")
    p_kw: float = Field(gt=0, description="power while it runs [kW]")
    run_min: int = Field(gt=0, le=1440, description="how long it runs once a day [min]")
    window_start_h: int = Field(
        ge=0, le=23, description="earliest start [hour of the local day, 0..23]"
    )
    window_end_h: int = Field(ge=1, le=24, description="latest end [hour of the local day, 1..24]")
    shed_priority: int = Field(50, ge=0, description="lower numbers are shed first")

    @model_validator(mode="after")
    def _check(self) -> ShiftableLoad:
        if (self.window_end_h - self.window_start_h) * 60 < self.run_min:
            raise ValueError("the window must be at least run_min long")
        return self


class HeatLoad(DeviceBase):
    """A building's heat demand (BDEW heat load profile, demandlib), served from a heat storage."""

    kind: Literal["heat_load"] = Field(description="the kind of device: heat_load")
    annual_kwh: float = Field(gt=0, description="heat per year [kWh]")
    profile: HeatProfile = Field(
        description=(
            "BDEW heat load profile: EFH, MFH (homes), GHD, GKO, GHA, GMK, GBD, GBH, "
            "GWA, GGA (trade)"
        )
    )
    building_class: int = Field(0, ge=0, le=11, description="demandlib building class [0..11]")
    heat_storage: str = Field(description="id of the heat storage that serves it")


class EVCharger(DeviceBase):
    """An EV charger with seeded charging sessions (arrival, dwell, energy)."""

    kind: Literal["ev_charger"] = Field(description="the kind of device: ev_charger")
    p_max_kw: float = Field(gt=0, description="largest charging power [kW]")
    sessions_per_day: float = Field(
        1.0, gt=0, le=4, description="mean charging sessions per day [0..4]"
    )
    arrival_h_mean: float = Field(
        18.0, ge=0, lt=24, description="mean arrival [hour of the local day]"
    )
    dwell_h_mean: float = Field(10.0, gt=0, le=24, description="mean time plugged in [h]")
    energy_kwh_mean: float = Field(gt=0, description="mean energy charged per session [kWh]")
    seed: int = Field(0, description="seed of the random sessions")
    shed_priority: int = Field(60, ge=0, description="lower numbers are shed first")


class Sensor(WiredDevice):
    """Temperature, vibration and noise of a piece of equipment."""

    kind: Literal["sensor"] = Field(description="the kind of device: sensor")
    watches: str = Field(description="id of the device it is mounted on")
    temp_rise_c: float = Field(25.0, ge=0, description="temperature rise at full load")
    vibration_mm_s_full_load: float = Field(
        4.5, ge=0, description="vibration velocity at full load [mm/s]"
    )
    noise_db_full_load: float = Field(75.0, ge=0, description="noise at full load [dB(A)]")
    seed: int = Field(0, description="seed of the measurement noise")


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
