"""What each kind of DER is to the platform: its ratings and limits, as written in a site file.

Their physics (PV orientation, hub heights, ramps, efficiencies, initial states) is in the
scenario (``openmeg.core.scenario``), which only the simulated field reads. Units are in the field
names; power into the MEG bus is positive (see ``openmeg.core.units``).
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from openmeg.core.addresses import ModbusAddress


class DeviceBase(BaseModel):
    """Fields every device has: identity, where it connects, who owns it."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str = Field(
        pattern=r"^[A-Za-z0-9][A-Za-z0-9_.\-]*$",
        max_length=64,
        description=(
            "the device's id: letters, digits, _ . -; unique in the site; it names "
            "the device on the bus"
        ),
    )
    bus: str = Field(description="name of the network bus the device connects to")
    owner: str = Field(description="customer id of the owner, or 'community'")
    critical: bool = Field(False, description="a critical device is never shed")
    name: str = Field("", description="a name for people (the id names it on the bus)")


class WiredDevice(DeviceBase):
    """A device on the wire: it answers Modbus TCP (SunSpec) at its ``address``."""

    address: ModbusAddress | None = Field(
        None,
        description=(
            "where the device answers Modbus TCP (unset: the simulated field lays it out from "
            "--base-port)"
        ),
    )


class PV(WiredDevice):
    """Rooftop or ground PV with its inverter."""

    kind: Literal["pv"] = Field(description="the kind of device: pv")
    inverter_kw: float = Field(gt=0, description="AC rating of the inverter, kW")


class Wind(WiredDevice):
    """A wind turbine with a power curve from windpowerlib's turbine library."""

    kind: Literal["wind"] = Field(description="the kind of device: wind")
    turbine_type: str = Field(description="turbine type in windpowerlib's library, e.g. E-53/800")
    rated_kw: float | None = Field(
        None, gt=0, description="scale the library curve to this rating (a smaller turbine)"
    )


NATURAL_GAS_CO2_KG_PER_KWH = 0.202
"""CO2 from burning natural gas, per kWh of fuel (net calorific value): 56,100 kg CO2/TJ, the
IPCC 2006 Guidelines' default (Vol. 2, ch. 2, Table 2.2), x 3.6e-6 TJ/kWh = 0.20196 kg/kWh. Per
kWh of *fuel*: the electricity's intensity is this divided by the electric efficiency (0.612 kg
per kWh of electricity at 33 %, 0.404 at 50 %)."""
_FUEL_CO2 = (
    "CO2 intensity of its fuel [kg CO2/kWh of fuel, net calorific value]; default natural gas, "
    "0.202 (IPCC 2006 Guidelines Vol. 2 Table 2.2: 56,100 kg/TJ); the CO2 of a kWh of "
    "electricity is this divided by eta_el"
)


class CHP(WiredDevice):
    """Combined heat and power unit (gas engine) feeding a heat storage."""

    kind: Literal["chp"] = Field(description="the kind of device: chp")
    p_el_max_kw: float = Field(gt=0, description="largest electric output [kW]")
    p_el_min_kw: float = Field(ge=0, description="minimum stable electric load while running")
    eta_el: float = Field(gt=0, lt=1, description="electric efficiency [fraction of fuel energy]")
    eta_th: float = Field(gt=0, lt=1, description="thermal efficiency [fraction of fuel energy]")
    heat_storage: str = Field(description="id of the heat storage it charges")
    co2_kg_per_kwh_fuel: float = Field(NATURAL_GAS_CO2_KG_PER_KWH, ge=0, description=_FUEL_CO2)
    grid_forming: bool = Field(
        True, description="whether it forms the grid (voltage and frequency) in island"
    )
    droop_pct: float = Field(
        4.0,
        gt=0,
        le=20,
        description="frequency droop [% of nominal frequency at full output, 0..20]",
    )

    @model_validator(mode="after")
    def _check(self) -> CHP:
        if self.p_el_min_kw > self.p_el_max_kw:
            raise ValueError("p_el_min_kw must not exceed p_el_max_kw")
        if self.eta_el + self.eta_th > 1:
            raise ValueError("eta_el + eta_th must not exceed 1")
        return self


class FuelCell(WiredDevice):
    """A fuel cell running at a commanded setpoint."""

    kind: Literal["fuel_cell"] = Field(description="the kind of device: fuel_cell")
    p_max_kw: float = Field(gt=0, description="largest output [kW]")
    p_min_kw: float = Field(0.0, ge=0, description="smallest output while running [kW]")
    p_set_kw: float = Field(ge=0, description="setpoint, kW")
    eta_el: float = Field(gt=0, lt=1, description="electric efficiency [fraction of fuel energy]")
    co2_kg_per_kwh_fuel: float = Field(
        NATURAL_GAS_CO2_KG_PER_KWH,
        ge=0,
        description=_FUEL_CO2 + " (a natural-gas fuel cell with its reformer; 0 for hydrogen "
        "from renewable electrolysis)",
    )

    @model_validator(mode="after")
    def _check(self) -> FuelCell:
        if not self.p_min_kw <= self.p_set_kw <= self.p_max_kw:
            raise ValueError("p_set_kw must lie between p_min_kw and p_max_kw")
        return self


class Battery(WiredDevice):
    """A battery energy storage system with its inverter."""

    kind: Literal["battery"] = Field(description="the kind of device: battery")
    capacity_kwh: float = Field(gt=0, description="usable energy capacity [kWh]")
    p_charge_max_kw: float = Field(gt=0, description="largest charging power [kW]")
    p_discharge_max_kw: float = Field(gt=0, description="largest discharging power [kW]")
    soc_min: float = Field(
        0.1, ge=0, lt=1, description="lowest state of charge [fraction of capacity]"
    )
    soc_max: float = Field(
        0.95, gt=0, le=1, description="highest state of charge [fraction of capacity]"
    )
    outage_reserve_soc: float | None = Field(
        None,
        ge=0,
        le=1,
        description=(
            "state of charge kept for outages, fraction of capacity: grid-connected "
            "self-consumption does not discharge below it; off the grid the battery may go down "
            "to soc_min. Unset: no reserve (self-consumption uses the battery down to soc_min)"
        ),
    )
    grid_forming: bool = Field(
        False, description="whether it forms the grid (voltage and frequency) in island"
    )
    droop_pct: float = Field(
        4.0,
        gt=0,
        le=20,
        description="frequency droop [% of nominal frequency at full output, 0..20]",
    )

    @model_validator(mode="after")
    def _check(self) -> Battery:
        if self.soc_min >= self.soc_max:
            raise ValueError("soc_min must be below soc_max")
        reserve = self.outage_reserve_soc
        if reserve is not None and not self.soc_min <= reserve <= self.soc_max:
            raise ValueError(
                f"outage_reserve_soc {reserve:g} must lie between soc_min {self.soc_min:g} "
                f"and soc_max {self.soc_max:g}"
            )
        return self

    @property
    def reserve_soc(self) -> float:
        """The outage reserve in force: ``outage_reserve_soc``, or ``soc_min`` when unset."""
        return self.soc_min if self.outage_reserve_soc is None else self.outage_reserve_soc


class HeatStorage(WiredDevice):
    """A hot-water heat store with a backup boiler."""

    kind: Literal["heat_storage"] = Field(description="the kind of device: heat_storage")
    capacity_kwh: float = Field(gt=0, description="heat capacity [kWh]")
    boiler_kw: float = Field(ge=0, description="backup boiler that covers what storage cannot")
    boiler_eta: float = Field(
        0.9, gt=0, le=1, description="efficiency of the backup boiler [fraction]"
    )
    boiler_co2_kg_per_kwh_fuel: float = Field(
        NATURAL_GAS_CO2_KG_PER_KWH,
        ge=0,
        description="CO2 intensity of the boiler's fuel [kg CO2/kWh of fuel, net calorific "
        "value]; default natural gas, 0.202 (IPCC 2006 Guidelines Vol. 2 Table 2.2); the CO2 "
        "of a kWh of heat is this divided by boiler_eta",
    )
