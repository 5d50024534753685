"""Which SunSpec models each kind of simulated device serves, and how its points map to ours.

``factor`` converts the SunSpec engineering value (after its scale factor) into our unit:
W -> kW is 0.001, percent -> fraction is 0.01. The simulated devices fill their registers from
this table; the platform reads any SunSpec device through ``sunspec_catalogue`` (which takes
the sensor and transfer-switch points from here) and commands it through ``sunspec_controls``.
"""

from __future__ import annotations

from dataclasses import dataclass

COMMON = 1
INVERTER = 103
CONTROLS = 123
STORAGE = 124
METER = 203
TRANSFER_SWITCH = 64900
CONDITION_SENSOR = 64901
HEAT_STORE = 64902
LINE_SWITCH = 64903


@dataclass(frozen=True, kw_only=True, slots=True)
class Mapped:
    """Our point ``point`` is SunSpec point ``model.name`` times ``factor``."""

    point: str
    model: int
    name: str
    factor: float = 1.0
    writable: bool = False
    low: float | None = None
    high: float | None = None


_INVERTER_POINTS = (
    Mapped(point="p_kw", model=INVERTER, name="W", factor=0.001),
    Mapped(point="energy_kwh", model=INVERTER, name="WH", factor=0.001),
    Mapped(point="frequency_hz", model=INVERTER, name="Hz"),
    Mapped(point="temperature_c", model=INVERTER, name="TmpCab"),
    Mapped(point="p_limit_pct", model=CONTROLS, name="WMaxLimPct", writable=True, low=0, high=100),
    Mapped(point="connected", model=CONTROLS, name="Conn", writable=True, low=0, high=1),
)

POINT_MAP: dict[str, tuple[Mapped, ...]] = {
    "inverter": _INVERTER_POINTS,
    "storage": (
        Mapped(point="p_kw", model=INVERTER, name="W", factor=0.001),
        Mapped(point="frequency_hz", model=INVERTER, name="Hz"),
        Mapped(point="soc", model=STORAGE, name="ChaState", factor=0.01),
        Mapped(point="p_set_kw", model=STORAGE, name="OutWRte", writable=True),
        Mapped(point="connected", model=CONTROLS, name="Conn", writable=True, low=0, high=1),
        # the storage's own meter: energy delivered (discharged) and received (charged)
        Mapped(point="energy_kwh", model=METER, name="TotWhExp", factor=0.001),
        Mapped(point="energy_in_kwh", model=METER, name="TotWhImp", factor=0.001),
    ),
    "meter": (
        Mapped(point="import_kw", model=METER, name="W", factor=0.001),
        Mapped(point="import_kwh", model=METER, name="TotWhImp", factor=0.001),
        Mapped(point="export_kwh", model=METER, name="TotWhExp", factor=0.001),
        Mapped(point="frequency_hz", model=METER, name="Hz"),
        Mapped(point="voltage_v", model=METER, name="PhV"),
    ),
    "sensor": (
        Mapped(point="temperature_c", model=CONDITION_SENSOR, name="Tmp"),
        Mapped(point="vibration_mm_s", model=CONDITION_SENSOR, name="Vib"),
        Mapped(point="noise_db", model=CONDITION_SENSOR, name="Noise"),
    ),
    "heat_storage": (
        Mapped(point="soc", model=HEAT_STORE, name="SoC", factor=0.01),
        Mapped(point="heat_demand_kw", model=HEAT_STORE, name="HeatDmd", factor=0.001),
        Mapped(point="heat_kw", model=HEAT_STORE, name="HeatIn", factor=0.001),
    ),
    "transfer_switch": (
        Mapped(point="mode", model=TRANSFER_SWITCH, name="Mode"),
        Mapped(point="utility_available", model=TRANSFER_SWITCH, name="UtilAval"),
        Mapped(point="switch_closed", model=TRANSFER_SWITCH, name="Pos"),
        Mapped(point="frequency_hz", model=TRANSFER_SWITCH, name="Hz"),
        Mapped(point="import_kw", model=TRANSFER_SWITCH, name="W", factor=0.001),
        Mapped(
            point="switch_command", model=TRANSFER_SWITCH, name="Cmd", writable=True, low=0, high=2
        ),
    ),
    "line_switch": (
        Mapped(point="switch_closed", model=LINE_SWITCH, name="Pos"),
        Mapped(point="fault_passed", model=LINE_SWITCH, name="FPI"),
        Mapped(point="switch_kind", model=LINE_SWITCH, name="Typ"),
        Mapped(point="switch_command", model=LINE_SWITCH, name="Cmd", writable=True, low=0, high=3),
    ),
}
"""Point maps by device family."""

MODELS: dict[str, tuple[int, ...]] = {
    "inverter": (COMMON, INVERTER, CONTROLS),
    "storage": (COMMON, INVERTER, STORAGE, CONTROLS, METER),
    "meter": (COMMON, METER),
    "sensor": (COMMON, CONDITION_SENSOR),
    "heat_storage": (COMMON, HEAT_STORE),
    "transfer_switch": (COMMON, TRANSFER_SWITCH),
    "line_switch": (COMMON, LINE_SWITCH),
}
"""The SunSpec models each device family serves, in map order (common model first)."""

FAMILY_OF_KIND = {
    "pv": "inverter",
    "wind": "inverter",
    "fuel_cell": "inverter",
    "chp": "inverter",
    "battery": "storage",
    "sensor": "sensor",
    "heat_storage": "heat_storage",
    "meter": "meter",
    "transfer_switch": "transfer_switch",
    "line_switch": "line_switch",
}
"""The device family of each kind of device that is on the wire."""


CHARGE_BIT, DISCHARGE_BIT = 1, 2
"""``StorCtl_Mod`` bits of model 124."""


def storage_setpoint(p_kw: float, w_cha_max_w: float) -> dict[str, float]:
    """Model 124 values for a signed setpoint (positive discharges): a rate in percent of
    ``WChaMax`` in ``OutWRte`` (discharge) or ``InWRte`` (charge), enabled in ``StorCtl_Mod``."""
    pct = abs(p_kw) * 1000.0 / w_cha_max_w * 100.0
    if p_kw >= 0:
        return {"StorCtl_Mod": DISCHARGE_BIT, "OutWRte": pct, "InWRte": 0.0}
    return {"StorCtl_Mod": CHARGE_BIT, "InWRte": pct, "OutWRte": 0.0}


def storage_setpoint_kw(values: dict[str, float], w_cha_max_w: float) -> float:
    """The signed setpoint (kW, positive discharges) that model 124 values ask for."""
    mode = int(values.get("StorCtl_Mod", 0))
    if mode & DISCHARGE_BIT:
        return values.get("OutWRte", 0.0) / 100.0 * w_cha_max_w / 1000.0
    if mode & CHARGE_BIT:
        return -values.get("InWRte", 0.0) / 100.0 * w_cha_max_w / 1000.0
    return 0.0
