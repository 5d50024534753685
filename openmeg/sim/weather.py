"""Weather from a TMY3 file (pvlib's bundled files work offline), at the simulation's steps.

TMY3 values are hourly, labelled at the end of the hour in local standard time; each hourly
value is placed at the middle of its hour and interpolated linearly to the step times (UTC).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pvlib

from openmeg.sim.physics.pv import FloatArray

PVLIB_DATA = Path(pvlib.__file__).resolve().parent / "data"
TMY3_MEASURED_AT_M = 10.0
"""TMY3 wind speeds are measured at 10 m."""


def tmy3_path(name: str) -> Path:
    """A path to a TMY3 file: as given, or one of pvlib's bundled files by name."""
    path = Path(name)
    if path.exists():
        return path
    bundled = PVLIB_DATA / name
    if bundled.exists():
        return bundled
    raise FileNotFoundError(
        f"TMY3 file {name!r} not found (pvlib bundles 723170TYA.CSV, 703165TY.csv)"
    )


@dataclass(frozen=True, kw_only=True)
class Weather:
    """Weather at each step: irradiance W/m², air temperature °C, wind m/s at 10 m."""

    index: pd.DatetimeIndex
    ghi: FloatArray
    dni: FloatArray
    dhi: FloatArray
    temp_air_c: FloatArray
    wind_m_s: FloatArray

    def frame(self) -> pd.DataFrame:
        return pd.DataFrame(
            {
                "ghi": self.ghi,
                "dni": self.dni,
                "dhi": self.dhi,
                "temp_air": self.temp_air_c,
                "wind_speed": self.wind_m_s,
            },
            index=self.index,
        )


def load_weather(name: str, index: pd.DatetimeIndex) -> Weather:
    """Weather of the TMY3 file ``name`` at the UTC step times ``index`` (any year)."""
    data, meta = pvlib.iotools.read_tmy3(str(tmy3_path(name)), map_variables=True)
    tz_h = float(meta["TZ"])
    # hour-ending local standard time -> hour middle in UTC, on a typical year of 8760 hours
    hour_of_year = np.arange(len(data), dtype=float) + 0.5 - tz_h  # hours after Jan 1 00:00 UTC
    year_start = pd.Timestamp(year=index[0].year, month=1, day=1, tz="UTC")
    t_h = np.asarray((index - year_start).total_seconds(), dtype=float) / 3600.0
    t_h = np.mod(t_h, len(data))  # a second simulated year repeats the typical year

    def at_steps(column: str) -> FloatArray:
        y = np.asarray(data[column], dtype=float)
        x = np.concatenate(
            ([hour_of_year[-1] - len(data)], hour_of_year, [hour_of_year[0] + len(data)])
        )
        y = np.concatenate(([y[-1]], y, [y[0]]))
        values: FloatArray = np.interp(t_h, x, y)
        return values

    return Weather(
        index=index,
        ghi=np.clip(at_steps("ghi"), 0, None),
        dni=np.clip(at_steps("dni"), 0, None),
        dhi=np.clip(at_steps("dhi"), 0, None),
        temp_air_c=at_steps("temp_air"),
        wind_m_s=np.clip(at_steps("wind_speed"), 0, None),
    )
