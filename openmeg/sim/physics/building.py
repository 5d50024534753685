"""A building's BAS equipment as the simulated field plays it: stepped in time (``BuildingPlant``,
whose points the field serves) or over a whole time index at once (``simulate_building``).

Both use the same equations (``building_eval.evaluate``). Powers in kW, energies in kWh,
temperatures in °C.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from numbers import Real
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd

from openmeg.core.bas_scenario import FAULT_EQUIPMENT, BasEvent, BasFault
from openmeg.core.building_automation import POINTS, BasSystem, point_of
from openmeg.core.errors import CommandError, OpenMegError
from openmeg.sim.physics.building_eval import evaluate
from openmeg.sim.physics.building_model import SCENE_LEVEL_PCT

AUTOMATIC = ("fan_on", "mode", "armed")
"""Points the plant sets itself until a command holds them."""

_DEFAULTS = {
    "ahu": {
        "fan_speed_pct": 80.0,
        "supply_temp_setpoint_c": 20.0,
        "space_temp_setpoint_c": 21.0,
        "occupied_from_h": 7.0,
        "occupied_to_h": 19.0,
    },
    "heat_pump": {"heat_water_c": 45.0, "cool_water_c": 7.0},
    "lighting_zone": {"level_pct": 80.0, "scene": 3.0},
}


def default_settings(bas: BasSystem) -> dict[str, float]:
    """Every writable point's value at start-up (NaN: automatic) and each heat pump's water
    setpoints for heating and cooling."""
    out: dict[str, float] = {}
    for e in bas.equipment:
        for p in POINTS[e.kind]:
            if p.name in AUTOMATIC:
                out[f"{e.id}.{p.name}"] = math.nan
        for name, value in _DEFAULTS.get(e.kind, {}).items():
            out[f"{e.id}.{name}"] = value
    return out


def check_scenario(bas: BasSystem, faults: Sequence[BasFault], events: Sequence[BasEvent]) -> None:
    """``OpenMegError`` naming the fault or event whose equipment is not of its kind in ``bas``."""
    kinds = {e.id: e.kind for e in bas.equipment}
    items: list[BasFault | BasEvent] = [*faults, *events]
    for item in items:
        if item.bas not in (None, bas.id):
            raise OpenMegError(f"a fault or event of the BAS {item.bas} given to the BAS {bas.id}")
    for f in faults:
        if kinds.get(f.equipment) != FAULT_EQUIPMENT[f.kind]:
            raise OpenMegError(
                f"a {f.kind} fault needs a {FAULT_EQUIPMENT[f.kind]} of the BAS {bas.id}: "
                f"{f.equipment!r} is not one (it has {', '.join(kinds)})"
            )
    for ev in events:
        want = "security" if ev.point == "intrusion" else "fire_alarm"
        if kinds.get(ev.equipment) != want:
            raise OpenMegError(
                f"an {ev.point} event needs a {want} of the BAS {bas.id}: "
                f"{ev.equipment!r} is not one"
            )


def _override(
    bas: BasSystem, settings: dict[str, float], changes: Mapping[str, float]
) -> dict[str, float]:
    plant = BuildingPlant(bas, timezone="UTC")
    for name, value in changes.items():
        plant.command(name, value)
    return {**settings, **plant._settings}


@dataclass(frozen=True, kw_only=True)
class BuildingRun:
    """An offline run: every point's series and each fault's wasted energy [kWh] (its truth)."""

    points: pd.DataFrame
    waste_kwh: tuple[float, ...]
    waste_kw: pd.DataFrame


def simulate_building(
    bas: BasSystem,
    index: pd.DatetimeIndex,
    outdoor_temp_c: Sequence[float] | np.ndarray,
    *,
    timezone: str,
    faults: Sequence[BasFault] = (),
    events: Sequence[BasEvent] = (),
    settings: Mapping[str, float] | None = None,
) -> BuildingRun:
    """Every point of ``bas`` over ``index`` (regular, aware; each time starts an interval) at
    the default settings (``settings`` overrides some, by ``<equipment>.<point>``), and the
    simulator's truth of what each fault wasted [kWh]."""
    check_scenario(bas, faults, events)
    if (
        index.tz is None
        or len(index) < 2
        or (index.freq is None and len(set(np.diff(index.asi8))) != 1)
    ):
        raise OpenMegError("give a regular, time-zone aware index of at least two times")
    t = index.tz_convert("UTC")
    dt_h = float(np.diff(t.asi8)[0]) / 3.6e12
    temp = np.asarray(outdoor_temp_c, dtype=float)
    if temp.shape != (len(t),) or not np.all(np.isfinite(temp)):
        raise OpenMegError("give one finite outdoor temperature per time of the index")
    settings = _override(bas, default_settings(bas), settings or {})
    zero = {e.id: np.zeros(len(t)) for e in bas.equipment if e.kind == "ahu"}
    first = evaluate(
        bas,
        settings,
        t_utc=t,
        outdoor_c=temp,
        run_hours=zero,
        timezone=timezone,
        faults=faults,
        events=events,
    )
    hours = {k: np.concatenate(([0.0], np.cumsum(v * dt_h)[:-1])) for k, v in first.running.items()}
    run = evaluate(
        bas,
        settings,
        t_utc=t,
        outdoor_c=temp,
        run_hours=hours,
        timezone=timezone,
        faults=faults,
        events=events,
    )
    names = [f"{e.id}.{p.name}" for e, p, _ in bas.objects()]
    points = pd.DataFrame({k: run.points[k] for k in names}, index=index)
    waste = pd.DataFrame({i: w for i, w in enumerate(run.waste_kw)}, index=index)
    return BuildingRun(
        points=points, waste_kwh=tuple(float(w.sum() * dt_h) for w in run.waste_kw), waste_kw=waste
    )


class BuildingPlant:
    """The equipment of one BAS, stepped by the simulated field; its points read and commanded
    by name ``<equipment>.<point>``.

    Until its first step every point reads quiet (off, 20 °C, setpoints at their defaults).
    ``fan_on``, a heat pump's ``mode`` and ``armed`` follow the schedule and the load until a
    command holds them (mode: 1 off, 2 heating only, 3 cooling only) and ``relinquish``
    returns them to automatic; ``water_setpoint_c`` is the setpoint of the mode in effect
    (heating when off); ``scene`` sets a zone's occupied level, as does ``level_pct``.
    """

    def __init__(
        self,
        bas: BasSystem,
        *,
        timezone: str,
        faults: Sequence[BasFault] = (),
        events: Sequence[BasEvent] = (),
    ) -> None:
        check_scenario(bas, faults, events)
        ZoneInfo(timezone)
        self._bas, self._tz = bas, timezone
        self._faults, self._events = tuple(faults), tuple(events)
        self._settings = default_settings(bas)
        self._kinds = {e.id: e.kind for e in bas.equipment}
        self._run_h = {e.id: 0.0 for e in bas.equipment if e.kind == "ahu"}
        self._values = self._quiet()
        self.commanded = False
        """Whether a command or relinquish came since the last step."""
        self._electric_kw = 0.0

    def _quiet(self) -> dict[str, float]:
        out = {}
        for e, p, _ in self._bas.objects():
            key = f"{e.id}.{p.name}"
            value = self._settings.get(key, math.nan)
            if p.name == "water_setpoint_c":
                value = self._settings[f"{e.id}.heat_water_c"]
            elif p.name == "level_pct":
                value = 0.0
            elif p.name.endswith("temp_c"):
                value = 20.0
            elif math.isnan(value):
                value = 1.0 if p.name == "mode" else 0.0
            out[key] = value
        return out

    def step(self, t: datetime, dt_s: float, outdoor_temp_c: float) -> None:
        """Play the interval of ``dt_s`` seconds from ``t`` (aware) at ``outdoor_temp_c``."""
        if t.tzinfo is None:
            raise OpenMegError("step the building plant with an aware time (e.g. in UTC)")
        if not (math.isfinite(dt_s) and dt_s > 0 and math.isfinite(outdoor_temp_c)):
            raise OpenMegError(
                "step the building plant with dt_s > 0 and a finite outdoor temperature"
            )
        index = pd.DatetimeIndex([pd.Timestamp(t).tz_convert("UTC")])
        run = evaluate(
            self._bas,
            self._settings,
            t_utc=index,
            outdoor_c=np.array([outdoor_temp_c], dtype=float),
            run_hours={k: np.array([v]) for k, v in self._run_h.items()},
            timezone=self._tz,
            faults=self._faults,
            events=self._events,
        )
        self._values = {k: float(v[0]) for k, v in run.points.items()}
        self.commanded = False
        for k, on in run.running.items():
            self._run_h[k] += float(on[0]) * dt_s / 3600.0
        self._electric_kw = self._power()

    def _power(self) -> float:
        names = {"ahu": "fan_kw", "heat_pump": "electric_kw", "lighting_zone": "lights_kw"}
        return sum(
            self._values[f"{e.id}.{names[e.kind]}"] for e in self._bas.equipment if e.kind in names
        )

    def read(self) -> dict[str, float]:
        """Every point of the BAS now, by ``<equipment>.<point>``."""
        return dict(self._values)

    def command(self, name: str, value: float) -> None:
        """Write a point; ``CommandError`` (nothing changed) if it is unknown, read-only, not
        finite or out of its range."""
        equipment, _, point = name.partition(".")
        kind = self._kinds.get(equipment)
        if kind is None:
            raise CommandError(f"the BAS {self._bas.id} has no equipment {equipment!r} ({name!r})")
        try:
            p = point_of(kind, point)
        except KeyError as err:
            raise CommandError(str(err.args[0])) from err
        if not p.writable:
            raise CommandError(f"{name} is read-only: it cannot be commanded")
        if isinstance(value, bool) or not isinstance(value, Real) or not math.isfinite(value):
            raise CommandError(f"{name} takes a finite number, not {value!r}")
        v = float(value)
        if not p.low <= v <= p.high:
            raise CommandError(f"{name} takes {p.low:g}..{p.high:g} {p.unit}, not {v:g}".rstrip())
        if (p.binary or p.states) and v != int(v):
            raise CommandError(f"{name} takes a whole number ({p.low:g}..{p.high:g}), not {v:g}")
        if p.name == "water_setpoint_c":
            mode = "cool" if self._values.get(f"{equipment}.mode") == 3.0 else "heat"
            self._settings[f"{equipment}.{mode}_water_c"] = v
        elif p.name == "scene":
            self._settings[name] = v
            self._settings[f"{equipment}.level_pct"] = SCENE_LEVEL_PCT[int(v) - 1]
        else:
            self._settings[name] = v
        self._values[name] = v
        self.commanded = True

    def relinquish(self, name: str) -> None:
        """Return ``fan_on``, ``mode`` or ``armed`` to automatic; ``CommandError`` for others."""
        if name not in self._settings or name.partition(".")[2] not in AUTOMATIC:
            raise CommandError(f"{name} cannot be relinquished: only {', '.join(AUTOMATIC)} can")
        self._settings[name] = math.nan
        self.commanded = True

    @property
    def electric_kw(self) -> float:
        """The BAS equipment's total electric draw now [kW] (fans, heat pumps, lights)."""
        return self._electric_kw
