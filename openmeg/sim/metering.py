"""What the simulated smart meters and condition sensors read, from the plant's outputs."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from openmeg.core.equipment import Sensor
from openmeg.core.site import Site
from openmeg.sim.engine import Outputs
from openmeg.sim.physics.pv import FloatArray
from openmeg.sim.physics.sensors import sensor_readings
from openmeg.sim.plant import Plant

# a meter's import is the opposite of its devices' injections into the MEG bus
_FAMILIES = ("ren", "load", "bat", "chp", "fc")
_IMPORT_SIGN = {"ren": -1.0, "load": 1.0, "bat": -1.0, "chp": -1.0, "fc": -1.0}


@dataclass(frozen=True, kw_only=True)
class MeterMap:
    """For each meter, the rows of the plant's outputs it measures (sub-meters included)."""

    members: dict[str, list[tuple[str, int]]]

    @classmethod
    def of(cls, site: Site, plant: Plant) -> MeterMap:
        families = {
            "ren": plant.ren_ids,
            "load": plant.load_ids,
            "bat": plant.bat_ids,
            "chp": plant.chp_ids,
            "fc": plant.fc_ids,
        }
        where = {d: (f, i) for f, ids in families.items() for i, d in enumerate(ids)}
        own = {m.id: [where[d] for d in m.devices if d in where] for m in site.meters}
        parent = {m.id: m.parent for m in site.meters}

        def measured(meter: str) -> list[tuple[str, int]]:
            rows = list(own[meter])
            for child, p in parent.items():
                if p == meter:
                    rows += measured(child)
            return rows

        return cls(members={m.id: measured(m.id) for m in site.meters})

    def import_kw(self, out: Outputs, steps: slice | int) -> dict[str, FloatArray]:
        """Net import (kW, positive into the premises) of every meter at ``steps``."""
        rows = {f: getattr(out, f) for f in _FAMILIES}
        result: dict[str, FloatArray] = {}
        for meter, members in self.members.items():
            total = np.zeros_like(out.grid[steps], dtype=float)
            for family, i in members:
                total = total + _IMPORT_SIGN[family] * rows[family][i, steps]
            result[meter] = total
        return result


def device_loading(plant: Plant, out: Outputs, device_id: str, steps: slice) -> FloatArray:
    """Output over rating (0..1) of a generator or storage device."""
    if device_id in plant.ren_ids:
        i = plant.ren_ids.index(device_id)
        return np.asarray(out.ren[i, steps] / max(plant.ren_rating_kw[i], 1e-9))
    if device_id in plant.bat_ids:
        i = plant.bat_ids.index(device_id)
        return np.asarray(np.abs(out.bat[i, steps]) / plant.bat_par[i, 2])
    if device_id in plant.chp_ids:
        i = plant.chp_ids.index(device_id)
        return np.asarray(out.chp[i, steps] / plant.chp_par[i, 1])
    if device_id in plant.fc_ids:
        i = plant.fc_ids.index(device_id)
        return np.asarray(out.fc[i, steps] / plant.fc_par[i, 1])
    raise KeyError(f"sensors can watch generators and storage; {device_id!r} is neither")


def sensor_series(
    site: Site, plant: Plant, out: Outputs, steps: slice
) -> dict[str, tuple[FloatArray, FloatArray, FloatArray]]:
    """``sensor id -> (temperature_c, vibration_mm_s, noise_db)`` over ``steps``."""
    result = {}
    start = steps.start or 0
    for s in site.devices_of("sensor"):
        assert isinstance(s, Sensor)
        loading = device_loading(plant, out, s.watches, steps)
        physics = plant.scenario.physics(s.id, s.kind)
        result[s.id] = sensor_readings(
            loading,
            plant.weather.temp_air_c[steps],
            temp_rise_c=physics.temp_rise_c,
            vibration_full_mm_s=physics.vibration_mm_s_full_load,
            noise_full_db=physics.noise_db_full_load,
            seed=physics.seed + start,
        )
    return result
