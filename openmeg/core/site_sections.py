"""The sections of a site file (all but its devices, meters and tariffs): where the MEG is, its
network, its utility connection, customers, buildings, controllers, alarm limits and VEE limits,
and the outages and settings the scenario's simulation plays; ``openmeg.core.site`` puts them
together."""

from __future__ import annotations

from datetime import date, datetime
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from openmeg.core.addresses import ModbusAddress
from openmeg.core.device_networks import parse_network
from openmeg.core.points import unit_of


class Frozen(BaseModel):
    """A part of a site file: immutable, and no field it does not know."""

    model_config = ConfigDict(frozen=True, extra="forbid")


class SiteInfo(Frozen):
    id: str = Field(
        pattern=r"^[A-Za-z0-9][A-Za-z0-9_\-]*$",
        max_length=64,
        description="the site's id: letters, digits, _ and -; it names the bus topics meg/<id>/...",
    )
    name: str = Field(description="the site's name for people")
    timezone: str = Field(
        description=(
            "IANA time zone of the site, e.g. Europe/Berlin (tariff schedules and "
            "profiles run on its local time)"
        )
    )
    latitude: float = Field(ge=-90, le=90, description="latitude [degrees north, -90..90]")
    longitude: float = Field(ge=-180, le=180, description="longitude [degrees east, -180..180]")
    altitude_m: float = Field(0.0, description="altitude above sea level [m]")
    frequency_hz: Literal[50, 60] = Field(50, description="nominal grid frequency [Hz]: 50 or 60")
    currency: str = Field(
        "USD",
        pattern=r"^[A-Z]{3}$",
        description="ISO 4217 code of the currency of the site's prices, bills and revenue",
    )
    device_networks: tuple[str, ...] | None = Field(
        None,
        description=(
            "where devices may be added at run time (openmeg devices add): NETWORK/PREFIX with "
            'optional ports, e.g. ["10.1.0.0/24", "127.0.0.1/32:15020-15100"]; unset: the '
            "hosts of the site file's own device addresses (127.0.0.1 for devices without one) "
            "at ports 502, 1502 and 10000..65535"
        ),
    )

    @field_validator("device_networks")
    @classmethod
    def _networks(cls, v: tuple[str, ...] | None) -> tuple[str, ...] | None:
        for entry in v or ():
            parse_network(entry)
        return v

    @field_validator("timezone")
    @classmethod
    def _tz(cls, v: str) -> str:
        try:
            ZoneInfo(v)
        except (ZoneInfoNotFoundError, ValueError) as err:
            raise ValueError(
                f"unknown time zone {v!r}: use an IANA name such as Europe/Berlin"
            ) from err
        return v


class Switchgear(Frozen):
    """What a line switch and a tie share: an id, and where its controller answers."""

    id: str = Field(
        pattern=r"^[A-Za-z0-9][A-Za-z0-9_.\-]*$",
        max_length=64,
        description="its id (unique among devices, meters, switches and ties)",
    )
    address: ModbusAddress | None = Field(
        None,
        description=(
            "where its switch controller answers Modbus TCP (unset: the simulated field lays "
            "it out from --base-port)"
        ),
    )


class LineSwitch(Switchgear):
    """A switch on a network line: a protective breaker or a remote-controlled sectionalizer."""

    line: str = Field(description="name of the line the switch sits on")
    kind: Literal["breaker", "sectionalizer"] = Field(
        "sectionalizer",
        description="breaker (protective, trips on a fault) or sectionalizer (remote-controlled)",
    )


class Tie(Switchgear):
    """A normally open tie line between two feeders, closed to restore supply after a fault."""

    from_bus: str = Field(description="name of the network bus at one end")
    to_bus: str = Field(
        description="name of the network bus at the other end (where its open switch sits)"
    )
    std_type: str = Field(description="pandapower line type of the tie, e.g. UG3")
    length_km: float = Field(gt=0, description="length of the tie line [km]")


class Network(Frozen):
    catalogue: Literal["cigre_lv"] | None = Field(
        None,
        description=(
            "a network from openmeg's catalogue: cigre_lv (pandapower's CIGRE LV "
            "benchmark); give this or file"
        ),
    )
    file: str | None = Field(None, description="pandapower JSON file, relative to the site file")
    switches: tuple[LineSwitch, ...] = Field(
        (), description="switches on the network's lines (closed in normal operation)"
    )
    ties: tuple[Tie, ...] = Field((), description="normally open tie lines between feeders")


class Outage(Frozen):
    """A utility outage, and how the utility comes back: its voltage for a while, its angle."""

    start: datetime = Field(
        description=(
            "when the utility is lost, with a time zone (ISO 8601, e.g. 2026-06-15T14:00:00Z)"
        )
    )
    end: datetime = Field(description="when the utility comes back, with a time zone; after start")
    return_voltage_pu: float = Field(
        1.0,
        gt=0.5,
        lt=1.5,
        description="the utility's voltage when it comes back [per unit, 0.5..1.5]",
    )
    recovery_min: float = Field(
        0.0,
        ge=0,
        description=(
            "how long the utility stays at return_voltage_pu before it is nominal again [min]"
        ),
    )
    return_phase_deg: float = Field(
        90.0,
        gt=-180,
        le=180,
        description=(
            "the utility's phase angle against the island's when it comes back [degrees, -180..180]"
        ),
    )

    @field_validator("start", "end")
    @classmethod
    def _aware(cls, v: datetime) -> datetime:
        if v.tzinfo is None:
            raise ValueError("give a time zone, e.g. 2026-06-15T14:00:00Z")
        return v


class SyncCheck(Frozen):
    max_dv_pu: float = Field(
        0.05,
        gt=0,
        description="largest voltage difference across the open switch for reconnection [per unit]",
    )
    max_df_hz: float = Field(
        0.2, gt=0, description="largest frequency difference for reconnection [Hz]"
    )
    max_dphi_deg: float = Field(
        10.0, gt=0, description="largest phase angle difference for reconnection [degrees]"
    )


class Utility(Frozen):
    """The utility-grid connection at the point of common coupling."""

    pcc_bus: str = Field(description="name of the network bus of the point of common coupling")
    import_limit_kw: float = Field(gt=0, description="largest import from the utility [kW]")
    export_limit_kw: float = Field(ge=0, description="largest export to the utility [kW]")
    transfer_switch: Literal["ats", "ctts"] = Field(
        "ats",
        description="ats: automatic transfer switch (open transition); ctts: closed transition",
    )
    transfer_switch_address: ModbusAddress | None = Field(
        None,
        description=(
            "where the transfer switch (device pcc) answers Modbus TCP (unset: the simulated "
            "field lays it out from --base-port)"
        ),
    )
    transfer_time_s: float = Field(0.2, ge=0, le=60, description="open-transition break time")
    co2_kg_per_kwh: float = Field(0.4, ge=0, description="CO2 intensity of utility power [kg/kWh]")
    sync_check: SyncCheck = Field(
        SyncCheck(), description="limits of the synchronism check before the MEG reconnects"
    )


class Customer(Frozen):
    id: str = Field(
        pattern=r"^[A-Za-z0-9][A-Za-z0-9_.\-]*$",
        max_length=64,
        description="the customer's id (meters, owners and bills name it)",
    )
    name: str = Field(description="the customer's name for people (and on bills)")
    kind: Literal["residential", "commercial", "industrial", "community"] = Field(
        description="residential, commercial, industrial or community"
    )
    building: str | None = Field(
        None, description="id of the aggregate building the customer owns a part of"
    )
    share: float | None = Field(
        None,
        gt=0,
        le=1,
        description=(
            "the owner's share of the building's basic charge [fraction, 0..1]; the "
            "shares of a building add up to 1"
        ),
    )
    tariff: str | None = Field(None, description="id of the customer's tariff in `tariffs`")
    since: date | None = Field(None, description="the day the customer joined (owner moved in)")


class Building(Frozen):
    """An aggregate building with partitioned owners who share one basic charge."""

    id: str = Field(
        pattern=r"^[A-Za-z0-9][A-Za-z0-9_.\-]*$", max_length=64, description="the building's id"
    )
    name: str = Field(description="the building's name for people")
    contracted_kw: float = Field(gt=0, description="the building's contracted power [kW]")
    basic_charge_per_month: float = Field(
        ge=0, description="the building's basic charge [currency per month], shared by its owners"
    )
    currency: str = Field(
        "USD", pattern=r"^[A-Z]{3}$", description="ISO 4217 currency code, e.g. USD"
    )
    main_meter: str = Field(description="id of the building's main meter")


class Controller(Frozen):
    kind: Literal["self_consumption", "heat_led_chp", "price_trading"] = Field(
        description=(
            "self_consumption (batteries follow their meter to zero), heat_led_chp "
            "(the CHP follows the heat store) or price_trading (storage trades on "
            "market prices)"
        )
    )
    priority: int = Field(
        ge=0, description="order in the control cycle: lower runs first; unique per site"
    )
    enabled: bool = Field(True, description="false: the controller does not run")


class AlarmLimit(Frozen):
    """An alarm limit of the SCADA on a point name, for the devices matching ``device`` (a
    glob); it replaces the built-in limit on the same point and devices, or adds one."""

    point: str = Field(description="point name the limit watches, e.g. temperature_c")
    device: str = Field(
        "*", max_length=64, description="devices it applies to: an id or a glob such as sensor-*"
    )
    low: float | None = Field(None, description="alarm below this value [the point's unit]")
    high: float | None = Field(None, description="alarm above this value [the point's unit]")
    band: float = Field(0.0, ge=0, description="how far back inside the limit clears the alarm")
    severity: Literal["info", "warning", "critical"] = Field(
        "warning", description="info, warning or critical"
    )

    @field_validator("point")
    @classmethod
    def _known(cls, v: str) -> str:
        try:
            unit_of(v)
        except KeyError as err:
            raise ValueError(str(err.args[0])) from None
        return v

    @model_validator(mode="after")
    def _bounds(self) -> AlarmLimit:
        if self.low is None and self.high is None:
            raise ValueError("give a low or a high limit (or both)")
        if self.low is not None and self.high is not None and self.low >= self.high:
            raise ValueError(f"low {self.low} must lie below high {self.high}")
        return self


class VeeSettings(Frozen):
    """Limits of the MDMS's validation rules for this site (energies per 15 minutes, kWh)."""

    time_tolerance_s: float = Field(60.0, gt=0, description="meter clock tolerance")
    spike_ratio: float = Field(4.0, gt=1, description="a spike: this many times its neighbours")
    spike_min_kwh: float = Field(0.5, ge=0, description="and at least this much")
    high_kwh: float | None = Field(None, gt=0, description="no interval above this")
    low_kwh: float | None = Field(None, ge=0, description="no interval below this")
    zero_run_intervals: int = Field(96, ge=1, description="zeros in a row on an active meter")
    register_tolerance_kwh: float = Field(
        0.01,
        ge=0,
        description="largest difference between register reads and the sum of intervals [kWh]",
    )


class InputLimits(Frozen):
    """What the MEG takes from its bus beyond the messages' own rules (anything beyond is
    refused where it arrives, counted and alarmed)."""

    max_abs_price_per_kwh: float = Field(
        5.0,
        gt=0,
        le=1000,
        description="largest magnitude of a market price, buy or sell [currency/kWh]",
    )
    meter_max_kw: float | None = Field(
        None,
        gt=0,
        description=(
            "largest power any meter can measure [kW]: a register gaining more than this over "
            "the time elapsed (plus a minute) is refused and its interval left unreported "
            "(unset: the utility's import and export limits plus every DER's rating)"
        ),
    )


class Simulation(Frozen):
    """Settings of the simulated field's grid (a part of the scenario)."""

    powerflow_interval_min: int = Field(
        60, gt=0, description="how often the simulation runs a full power flow [min]"
    )
    f_min_hz_ok: float | None = Field(
        None,
        description=(
            "lowest frequency counted as within limits in the summary [Hz] (unset: 0.5 Hz "
            "below the site's nominal frequency)"
        ),
    )
    f_max_hz_ok: float | None = Field(
        None,
        description=(
            "highest frequency counted as within limits in the summary [Hz] (unset: 0.5 Hz "
            "above the site's nominal frequency)"
        ),
    )
    shed_below_hz: float | None = Field(
        None,
        description=(
            "under-frequency load shedding threshold [Hz] (unset: 0.4 Hz below the site's "
            "nominal frequency)"
        ),
    )

    def frequency_band(self, nominal_hz: float) -> tuple[float, float]:
        """The frequencies counted as within limits at ``nominal_hz`` [Hz]."""
        lo = nominal_hz - 0.5 if self.f_min_hz_ok is None else self.f_min_hz_ok
        hi = nominal_hz + 0.5 if self.f_max_hz_ok is None else self.f_max_hz_ok
        return lo, hi

    def shedding_below(self, nominal_hz: float) -> float:
        """The under-frequency load shedding threshold at ``nominal_hz`` [Hz]."""
        return nominal_hz - 0.4 if self.shed_below_hz is None else self.shed_below_hz
