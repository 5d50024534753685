"""Weather from a typical-year file at the simulation's steps: a TMY3 file (pvlib's bundled
files work offline) or a PVGIS typical year (CSV or JSON; openmeg ships one at 45 N 8 E).

TMY3 values are hourly, labelled at the end of the hour in local standard time: each is placed
at the middle of its hour. PVGIS values are hourly, stamped in UTC and taken at their stamps
(PVGIS irradiance is instantaneous, not an hour's mean). Both are interpolated linearly to the
step times (UTC) on a year of 8760 hours that repeats.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pvlib

from openmeg.sim.physics.pv import FloatArray

PVLIB_DATA = Path(pvlib.__file__).resolve().parent / "data"
OPENMEG_DATA = Path(__file__).resolve().parent / "data"
DEMO_WEATHER = "pvgis_tmy_45.000_8.000_2005_2016.csv"
WIND_MEASURED_AT_M = 10.0
"""TMY3 and PVGIS wind speeds are both at 10 m."""
COLUMNS = ["ghi", "dni", "dhi", "temp_air", "wind_speed"]


def weather_path(name: str) -> Path:
    """A path to a weather file: as given, or a file openmeg or pvlib ships, by name."""
    path = Path(name)
    if path.exists():
        return path
    for folder in (OPENMEG_DATA, PVLIB_DATA):
        if (folder / name).exists():
            return folder / name
    raise FileNotFoundError(
        f"weather file {name!r} not found (openmeg ships {DEMO_WEATHER}, a PVGIS year; pvlib "
        "ships the TMY3 files 723170TYA.CSV and 703165TY.csv)"
    )


def is_pvgis(path: Path) -> bool:
    """A PVGIS typical year (JSON, or CSV opening with its latitude) rather than TMY3."""
    if path.suffix.lower() == ".json":
        return True
    with path.open(encoding="utf-8", errors="replace") as f:
        return f.readline().startswith("Latitude (decimal degrees)")


def typical_year(name: str) -> tuple[pd.DataFrame, float]:
    """The hourly values of the weather file ``name`` (``COLUMNS``, 8760 rows) and the hour of
    the year, in UTC, its first row stands for."""
    path = weather_path(name)
    if is_pvgis(path):
        data, _ = pvlib.iotools.read_pvgis_tmy(str(path), map_variables=True)
        first = 0.0
    else:
        data, meta = pvlib.iotools.read_tmy3(str(path), map_variables=True)
        first = 0.5 - float(meta["TZ"])  # hour-ending local standard time -> middle, UTC
    return data[COLUMNS].reset_index(drop=True), first


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
    """Weather of the file ``name`` (TMY3 or PVGIS) at the UTC step times ``index`` (any
    year)."""
    data, first = typical_year(name)
    hour_of_year = np.arange(len(data), dtype=float) + first  # hours after Jan 1 00:00 UTC
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
