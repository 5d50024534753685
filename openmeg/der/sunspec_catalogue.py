"""What the platform reads from any SunSpec device, in openmeg's vocabulary.

For each device family, each of our points lists its SunSpec sources in order of preference;
discovery takes the first one the device serves and implements. ``factor`` turns the SunSpec
engineering value (after its scale factor) into our unit: W -> kW is 0.001, percent -> fraction
0.01. Ratings (in W and Wh, as SunSpec gives them) come the same way from 702, 802, 713, 120,
121 and 124.
"""

from __future__ import annotations

from dataclasses import dataclass

from openmeg.der import sunspec_map as ssm

COMMON = 1
AC_MEASUREMENT = (701, 103, 102, 101, 113, 112, 111)
"""Models that measure an inverter's AC side: IEEE 1547 (701) first, then the 10x/11x ones."""
LEGACY_AC = (103, 102, 101, 113, 112, 111)
STORAGE_MODELS = (124, 802, 713)
METER_MODELS = (203, 204, 202, 201)
MPPT = 160
CONTROL_MODELS = (123, 124, 704)


@dataclass(frozen=True, kw_only=True, slots=True)
class Source:
    """Our point is SunSpec point ``model.name`` (a path) times ``factor``."""

    model: int
    name: str
    factor: float = 1.0


def _each(models: tuple[int, ...], name: str, factor: float = 1.0) -> tuple[Source, ...]:
    return tuple(Source(model=m, name=name, factor=factor) for m in models)


_GENERATION: dict[str, tuple[Source, ...]] = {
    "p_kw": _each(AC_MEASUREMENT, "W", 0.001),
    "frequency_hz": _each(AC_MEASUREMENT, "Hz"),
    "temperature_c": _each(AC_MEASUREMENT, "TmpCab"),
    "voltage_v": (Source(model=701, name="LNV"), *_each(LEGACY_AC, "PhVphA")),
}

READINGS: dict[str, dict[str, tuple[Source, ...]]] = {
    "inverter": {
        **_GENERATION,
        "energy_kwh": (
            Source(model=701, name="TotWhInj", factor=0.001),
            *_each(LEGACY_AC, "WH", 0.001),
        ),
    },
    "storage": {
        **_GENERATION,
        "soc": (
            Source(model=802, name="SoC", factor=0.01),
            Source(model=713, name="SoC", factor=0.01),
            Source(model=124, name="ChaState", factor=0.01),
        ),
        # the storage's own meter first, else its 701 energies: delivered (discharged), received
        "energy_kwh": (
            *_each(METER_MODELS, "TotWhExp", 0.001),
            Source(model=701, name="TotWhInj", factor=0.001),
        ),
        "energy_in_kwh": (
            *_each(METER_MODELS, "TotWhImp", 0.001),
            Source(model=701, name="TotWhAbs", factor=0.001),
        ),
    },
    "meter": {
        "import_kw": _each(METER_MODELS, "W", 0.001),
        "import_kwh": _each(METER_MODELS, "TotWhImp", 0.001),
        "export_kwh": _each(METER_MODELS, "TotWhExp", 0.001),
        "frequency_hz": _each(METER_MODELS, "Hz"),
        "voltage_v": _each(METER_MODELS, "PhV"),
    },
    **{
        family: {
            m.point: (Source(model=m.model, name=m.name, factor=m.factor),)
            for m in ssm.POINT_MAP[family]
            if not m.writable
        }
        for family in ("sensor", "transfer_switch", "heat_storage", "line_switch")
    },
}
"""Read-only points by family: our point -> its SunSpec sources, first served wins."""

KEY_POINT = {"inverter": "p_kw", "storage": "p_kw", "meter": "import_kw"}
"""The point without which a family cannot be operated."""

MPPT_READINGS = (
    ("dc_a", "DCA", 1.0),
    ("dc_v", "DCV", 1.0),
    ("dc_kw", "DCW", 0.001),
    ("dc_kwh", "DCWH", 0.001),
)
"""Per MPPT module of model 160: ``mppt<n>_<suffix>`` (n from 1) is ``module[n-1].<point>``."""


@dataclass(frozen=True, kw_only=True, slots=True)
class Ratings:
    """What a device says it can do, in SunSpec's units; ``None`` where it does not say.

    ``w_max_w`` is the active power that percent setpoints refer to (702 ``WMax``, 121
    ``WMax``), ``w_rating_w`` the nameplate rating (702 ``WMaxRtg``, 120 ``WRtg``).
    """

    w_max_w: float | None = None
    w_rating_w: float | None = None
    w_charge_max_w: float | None = None
    w_discharge_max_w: float | None = None
    energy_wh: float | None = None
    pf_min_over: float | None = None
    pf_min_under: float | None = None


RATING_SOURCES: dict[str, tuple[Source, ...]] = {
    "w_max_w": (
        Source(model=702, name="WMax"),
        Source(model=702, name="WMaxRtg"),
        Source(model=121, name="WMax"),
        Source(model=120, name="WRtg"),
    ),
    "w_rating_w": (Source(model=702, name="WMaxRtg"), Source(model=120, name="WRtg")),
    "w_charge_max_w": (
        Source(model=702, name="WChaRteMax"),
        Source(model=702, name="WChaRteMaxRtg"),
        Source(model=802, name="WChaRteMax"),
        Source(model=124, name="WChaMax"),
        Source(model=120, name="MaxChaRte"),
    ),
    "w_discharge_max_w": (
        Source(model=702, name="WDisChaRteMax"),
        Source(model=702, name="WDisChaRteMaxRtg"),
        Source(model=802, name="WDisChaRteMax"),
        Source(model=120, name="MaxDisChaRte"),
        Source(model=124, name="WChaMax"),  # 124 has one rate for both directions
    ),
    "energy_wh": (
        Source(model=713, name="WHRtg"),
        Source(model=802, name="WHRtg"),
        Source(model=120, name="WHRtg"),
    ),
    "pf_min_over": (Source(model=702, name="PFOvrExtRtg"),),
    "pf_min_under": (Source(model=702, name="PFUndExtRtg"),),
}


def family_of(model_ids: tuple[int, ...]) -> tuple[str, str | None]:
    """The family a device belongs to by the models it serves, and why it can only be
    monitored (``None`` when openmeg can operate it)."""
    served = set(model_ids)
    if ssm.TRANSFER_SWITCH in served:
        return "transfer_switch", None
    if ssm.LINE_SWITCH in served:
        return "line_switch", None
    if ssm.CONDITION_SENSOR in served:
        return "sensor", None
    if ssm.HEAT_STORE in served:
        return "heat_storage", None
    ac = served & set(AC_MEASUREMENT)
    storage = sorted(served & set(STORAGE_MODELS))
    if storage:
        if not ac:
            return "storage", (
                f"it serves storage model(s) {', '.join(map(str, storage))} but no AC "
                f"measurement model ({_list(AC_MEASUREMENT)}): its power cannot be read"
            )
        return "storage", None
    if ac:
        return "inverter", None
    if served & set(METER_MODELS):
        return "meter", None
    others = sorted(served - {COMMON})
    what = (
        "only the common model 1" if not others else f"models {', '.join(map(str, sorted(served)))}"
    )
    return "unknown", (
        f"it serves {what}, no measurement model openmeg reads "
        f"({_list(AC_MEASUREMENT)}, {_list(METER_MODELS)}, "
        f"{ssm.TRANSFER_SWITCH}, {ssm.CONDITION_SENSOR}, {ssm.HEAT_STORE}, {ssm.LINE_SWITCH})"
    )


def _list(models: tuple[int, ...]) -> str:
    return ", ".join(map(str, sorted(models)))
