"""The scenario section of a site file: the simulated plant's own description.

The platform operates equipment by its ratings and limits; it knows nothing of the weather, the
demand profiles, the physics of each device or the scheduled outages. Those describe the plant
that ``openmeg sim serve`` and ``openmeg simulate`` play, and only the simulator reads them.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import AliasChoices, Field, model_validator

from openmeg.core.bas_scenario import BasEvent, BasFault
from openmeg.core.equipment import ElectricProfile, HeatProfile
from openmeg.core.site_sections import Frozen, Outage, Simulation

_KIND = "the device's kind, taken from its entry in devices (need not be written)"


class PVPhysics(Frozen):
    """A PV array as pvlib's PVWatts models it."""

    kind: Literal["pv"] = Field("pv", description=_KIND)
    dc_kwp: float = Field(gt=0, description="DC rating at STC [kWp]")
    tilt_deg: float = Field(
        25.0, ge=0, le=90, description="tilt of the modules from horizontal [degrees, 0..90]"
    )
    azimuth_deg: float = Field(
        180.0,
        ge=0,
        lt=360,
        description="azimuth of the modules [degrees from north, clockwise; 180: south]",
    )
    system_losses: float = Field(
        0.14, ge=0, lt=1, description="PVWatts system losses [fraction, 0..1]"
    )
    gamma_pdc_per_c: float = Field(
        -0.004, lt=0, gt=-0.02, description="temperature coefficient of DC power [1/C]"
    )


class WindPhysics(Frozen):
    """Where a wind turbine stands: the wind at its hub."""

    kind: Literal["wind"] = Field("wind", description=_KIND)
    hub_height_m: float = Field(gt=0, description="hub height [m]")
    roughness_length_m: float = Field(
        0.15, gt=0, lt=5, description="roughness length of the terrain [m]"
    )


class ChpPhysics(Frozen):
    """How a CHP engine moves: ramp and minimum run and stop times."""

    kind: Literal["chp"] = Field("chp", description=_KIND)
    ramp_kw_per_min: float = Field(gt=0, description="largest change of electric output [kW/min]")
    min_up_min: int = Field(ge=0, description="shortest run once started [min]")
    min_down_min: int = Field(ge=0, description="shortest stop once stopped [min]")


class FuelCellPhysics(Frozen):
    """How a fuel cell moves."""

    kind: Literal["fuel_cell"] = Field("fuel_cell", description=_KIND)
    ramp_kw_per_min: float = Field(gt=0, description="largest change of output [kW/min]")


class BatteryPhysics(Frozen):
    """A battery's losses and its state at the start of a simulation."""

    kind: Literal["battery"] = Field("battery", description=_KIND)
    eta_charge: float = Field(0.95, gt=0, le=1, description="charging efficiency [fraction]")
    eta_discharge: float = Field(0.95, gt=0, le=1, description="discharging efficiency [fraction]")
    soc_initial: float = Field(
        0.5,
        ge=0,
        le=1,
        description=(
            "state of charge at the start of a simulation [fraction of capacity]; between the "
            "battery's soc_min and soc_max"
        ),
    )


class HeatStoragePhysics(Frozen):
    """A heat store's standing losses and its state at the start of a simulation."""

    kind: Literal["heat_storage"] = Field("heat_storage", description=_KIND)
    loss_per_h: float = Field(
        0.005, ge=0, lt=1, description="standing loss [fraction of the stored heat per hour]"
    )
    soc_initial: float = Field(
        0.5,
        ge=0,
        le=1,
        description="state of charge at the start of a simulation [fraction of capacity]",
    )


class LoadPhysics(Frozen):
    """An electric load following a BDEW standard load profile (demandlib)."""

    kind: Literal["load"] = Field("load", description=_KIND)
    annual_kwh: float = Field(gt=0, description="energy per year [kWh]")
    profile: ElectricProfile = Field(
        description=(
            "BDEW standard load profile: h0, h0_dyn (households), g0..g6 (trade), l0..l2 (farms)"
        )
    )
    power_factor: float = Field(0.95, gt=0, le=1, description="power factor [0..1]")


class ShiftableLoadPhysics(Frozen):
    """When a shiftable load runs: ``run_min`` once a day inside a local time window."""

    kind: Literal["shiftable_load"] = Field("shiftable_load", description=_KIND)
    run_min: int = Field(gt=0, le=1440, description="how long it runs once a day [min]")
    window_start_h: int = Field(
        ge=0, le=23, description="earliest start [hour of the local day, 0..23]"
    )
    window_end_h: int = Field(ge=1, le=24, description="latest end [hour of the local day, 1..24]")

    @model_validator(mode="after")
    def _check(self) -> ShiftableLoadPhysics:
        if (self.window_end_h - self.window_start_h) * 60 < self.run_min:
            raise ValueError("the window must be at least run_min long")
        return self


class HeatLoadPhysics(Frozen):
    """A building's heat demand (BDEW heat load profile, demandlib)."""

    kind: Literal["heat_load"] = Field("heat_load", description=_KIND)
    annual_kwh: float = Field(gt=0, description="heat per year [kWh]")
    profile: HeatProfile = Field(
        description=(
            "BDEW heat load profile: EFH, MFH (homes), GHD, GKO, GHA, GMK, GBD, GBH, "
            "GWA, GGA (trade)"
        )
    )
    building_class: int = Field(0, ge=0, le=11, description="demandlib building class [0..11]")


class EVChargerPhysics(Frozen):
    """Seeded charging sessions of an EV charger (arrival, dwell, energy)."""

    kind: Literal["ev_charger"] = Field("ev_charger", description=_KIND)
    sessions_per_day: float = Field(
        1.0, gt=0, le=4, description="mean charging sessions per day [0..4]"
    )
    arrival_h_mean: float = Field(
        18.0, ge=0, lt=24, description="mean arrival [hour of the local day, 0..24]"
    )
    dwell_h_mean: float = Field(10.0, gt=0, le=24, description="mean time plugged in [h]")
    energy_kwh_mean: float = Field(gt=0, description="mean energy charged per session [kWh]")
    seed: int = Field(0, description="seed of the random sessions")


class SensorPhysics(Frozen):
    """What a sensor measures on the equipment it watches, and its measurement noise."""

    kind: Literal["sensor"] = Field("sensor", description=_KIND)
    temp_rise_c: float = Field(
        25.0, ge=0, description="temperature rise above ambient at full load [C]"
    )
    vibration_mm_s_full_load: float = Field(
        4.5, ge=0, description="vibration velocity at full load [mm/s]"
    )
    noise_db_full_load: float = Field(75.0, ge=0, description="noise at full load [dB(A)]")
    seed: int = Field(0, description="seed of the measurement noise")


PHYSICS_OF_KIND: dict[str, type[Frozen]] = {
    "pv": PVPhysics,
    "wind": WindPhysics,
    "chp": ChpPhysics,
    "fuel_cell": FuelCellPhysics,
    "battery": BatteryPhysics,
    "heat_storage": HeatStoragePhysics,
    "load": LoadPhysics,
    "shiftable_load": ShiftableLoadPhysics,
    "heat_load": HeatLoadPhysics,
    "ev_charger": EVChargerPhysics,
    "sensor": SensorPhysics,
}
"""The physics model of each kind of device."""

PHYSICS_FIELDS: dict[str, tuple[str, ...]] = {
    kind: tuple(f for f in model.model_fields if f != "kind")
    for kind, model in PHYSICS_OF_KIND.items()
}
"""The fields of each kind of device that belong in ``scenario.devices``."""

DevicePhysics = Annotated[
    PVPhysics
    | WindPhysics
    | ChpPhysics
    | FuelCellPhysics
    | BatteryPhysics
    | HeatStoragePhysics
    | LoadPhysics
    | ShiftableLoadPhysics
    | HeatLoadPhysics
    | EVChargerPhysics
    | SensorPhysics,
    Field(discriminator="kind"),
]


class Scenario(Frozen):
    """The simulated plant: weather, scheduled outages, simulation settings, device physics."""

    weather: str = Field(
        validation_alias=AliasChoices("weather", "weather_tmy3"),
        description=(
            "typical-year weather file, TMY3 or PVGIS (CSV or JSON): a path, or the name of a "
            "file openmeg ships (pvgis_tmy_45.000_8.000_2005_2016.csv, 45 N 8 E) or pvlib "
            "ships (723170TYA.CSV); weather_tmy3 is its older name"
        ),
    )
    outages: tuple[Outage, ...] = Field((), description="utility outages the simulated field plays")
    simulation: Simulation = Field(Simulation(), description="settings of the simulation")
    devices: dict[str, DevicePhysics] = Field(
        {},
        description=(
            "the physics of each device, by its id in devices; a device without an entry takes "
            "its kind's defaults (kinds with a required field need an entry)"
        ),
    )

    bas_faults: tuple[BasFault, ...] = Field(
        (),
        description=(
            "faults of the building automation systems' equipment: cop_drift, fan_after_hours, "
            "lights_empty_zone (the efficiency diagnosis has to find them)"
        ),
    )
    bas_events: tuple[BasEvent, ...] = Field(
        (), description="fire alarm and security inputs raised for a while"
    )

    def physics(self, device_id: str, kind: str) -> Any:
        """The physics of device ``device_id`` of ``kind``: its entry, or its kind's defaults."""
        found = self.devices.get(device_id)
        if found is not None:
            return found
        return PHYSICS_OF_KIND[kind]()


def missing_physics(scenario: Scenario, devices: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """``(field, message)`` for every device of ``(id, kind)`` the scenario cannot simulate."""
    out = []
    for device_id, kind in devices:
        if device_id in scenario.devices:
            continue
        model = PHYSICS_OF_KIND[kind]
        need = [n for n, f in model.model_fields.items() if f.is_required()]
        if need:
            out.append(
                (
                    f"scenario.devices.{device_id}",
                    f"no physics for the {kind} {device_id!r}: give {', '.join(need)}",
                )
            )
    return out


def move_to_scenario(data: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """A site file's raw mapping with the plant's description moved from its old places
    (``weather_tmy3``, ``utility.outages``, ``simulation``, physics fields of the devices) into
    ``scenario``, and a note for each move; ``ValueError`` when both places give a field."""
    notes: list[str] = []
    old_top = [k for k in ("weather_tmy3", "simulation") if k in data]
    utility = data.get("utility")
    has_outages = isinstance(utility, dict) and "outages" in utility
    devices = data.get("devices")
    device_list = devices if isinstance(devices, list | tuple) else []
    moves = [
        (i, d, [f for f in PHYSICS_FIELDS.get(str(d.get("kind")), ()) if f in d])
        for i, d in enumerate(device_list)
        if isinstance(d, dict)
    ]
    if not old_top and not has_outages and not any(fields for _, _, fields in moves):
        return data, notes
    out = dict(data)
    scenario = dict(out.get("scenario") or {})
    for key in old_top:
        if key in scenario:
            raise ValueError(f"{key} is given at the top level and in scenario: keep scenario's")
        scenario[key] = out.pop(key)
        notes.append(f"{key}: moved to scenario.{key}")
    if has_outages:
        assert isinstance(utility, dict)
        if "outages" in scenario:
            raise ValueError("outages are given in utility and in scenario: keep scenario's")
        rest = dict(utility)
        scenario["outages"] = rest.pop("outages")
        out["utility"] = rest
        notes.append("utility.outages: moved to scenario.outages")
    physics = {k: dict(v) for k, v in (scenario.get("devices") or {}).items()}
    new_devices = list(device_list)
    for i, d, fields in moves:
        if not fields:
            continue
        entry = physics.setdefault(str(d.get("id")), {})
        for f in fields:
            if f in entry:
                raise ValueError(
                    f"devices[{i}].{f} is also given in scenario.devices.{d.get('id')}: "
                    "keep scenario's"
                )
            entry[f] = d[f]
        new_devices[i] = {k: v for k, v in d.items() if k not in fields}
        notes.append(
            f"devices[{i}]({d.get('kind')}).{', '.join(fields)}: moved to "
            f"scenario.devices.{d.get('id')}"
        )
    out["devices"] = new_devices
    scenario["devices"] = physics
    out["scenario"] = scenario
    return out, notes


def tag_kinds(data: dict[str, Any]) -> dict[str, Any]:
    """``scenario.devices`` with each entry's ``kind`` filled in from its device; the entry of a
    device of an unknown kind is left out (the device's own entry reports the kind)."""
    scenario = data.get("scenario")
    if not isinstance(scenario, dict) or not isinstance(scenario.get("devices"), dict):
        return data
    kinds: dict[Any, Any] = {}
    for d in data.get("devices") or ():
        if isinstance(d, dict):
            kinds.setdefault(d.get("id"), d.get("kind"))
    tagged = {
        k: ({"kind": kinds[k], **v} if isinstance(v, dict) and k in kinds else v)
        for k, v in scenario["devices"].items()
        if k not in kinds or kinds[k] in PHYSICS_OF_KIND
    }
    return {**data, "scenario": {**scenario, "devices": tagged}}


def unknown_scenario_devices(data: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """``data`` without the entries of ``scenario.devices`` that name no device, and their ids
    (to report with the other problems of the site file)."""
    scenario = data.get("scenario")
    if not isinstance(scenario, dict) or not isinstance(scenario.get("devices"), dict):
        return data, []
    ids = {d.get("id") for d in data.get("devices") or () if isinstance(d, dict)}
    strangers = [k for k in scenario["devices"] if k not in ids]
    if not strangers:
        return data, []
    kept = {k: v for k, v in scenario["devices"].items() if k in ids}
    return {**data, "scenario": {**scenario, "devices": kept}}, strangers
