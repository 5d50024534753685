"""Electric and heat demand profiles from demandlib's bundled BDEW data, at the simulation steps.

BDEW profiles are 15-minute energies normalised to one per year, in local standard time. Each
load gets a seeded shift of up to half an hour and a little noise so that homes of one profile do
not switch in lock-step; the annual energy is kept exactly.
"""

from __future__ import annotations

import warnings
import zlib
from datetime import UTC, datetime
from functools import cache
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd

from openmeg.sim.physics.pv import FloatArray


def standard_offset_h(timezone: str, year: int) -> float:
    """The zone's standard (winter) UTC offset in hours."""
    off = datetime(year, 1, 15, tzinfo=UTC).astimezone(ZoneInfo(timezone)).utcoffset()
    return off.total_seconds() / 3600.0 if off is not None else 0.0


@cache
def _bdew_electric(year: int) -> pd.DataFrame:
    import demandlib.bdew as bdew

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        frame = bdew.ElecSlp(year).get_profiles()
    return frame / frame.sum()


def seed_of(text: str) -> int:
    return zlib.crc32(text.encode())


def _to_steps(
    values: FloatArray, period_h: float, year: int, offset_h: float, index: pd.DatetimeIndex
) -> FloatArray:
    """Hold each value of a local-standard-time series over its period, at UTC step times."""
    year_start = pd.Timestamp(year=year, month=1, day=1, tz="UTC")
    t_h = np.asarray((index - year_start).total_seconds(), dtype=float) / 3600.0 + offset_h
    slot = np.floor(np.mod(t_h, values.size * period_h) / period_h).astype(np.int64)
    return values[slot]


def electric_load_kw(
    profile: str, annual_kwh: float, index: pd.DatetimeIndex, *, timezone: str, key: str
) -> FloatArray:
    """Demand in kW at each step for a BDEW profile scaled to ``annual_kwh`` per year."""
    year = index[0].year
    base = np.asarray(_bdew_electric(year)[profile], dtype=float)
    rng = np.random.default_rng(seed_of(key))
    shifted = np.roll(base, int(rng.integers(-2, 3)))
    noisy = shifted * rng.lognormal(0.0, 0.15, shifted.size)
    energy_per_quarter = noisy / noisy.sum() * annual_kwh
    kw = energy_per_quarter * 4.0
    return _to_steps(kw, 0.25, year, standard_offset_h(timezone, year), index)


def heat_load_kw(
    profile: str,
    annual_kwh: float,
    building_class: int,
    temp_air_hourly_c: FloatArray,
    index: pd.DatetimeIndex,
    *,
    timezone: str,
) -> FloatArray:
    """Heat demand in kW at each step (BDEW heat load profile driven by the air temperature)."""
    import demandlib.bdew as bdew

    year = index[0].year
    hours = pd.date_range(datetime(year, 1, 1), periods=temp_air_hourly_c.size, freq="h")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        hourly = bdew.HeatBuilding(
            hours,
            temperature=pd.Series(temp_air_hourly_c, index=hours),
            shlp_type=profile,
            building_class=building_class,
            wind_class=0,
            annual_heat_demand=annual_kwh,
            name=profile,
            ww_incl=True,
        ).get_bdew_profile()
    kw = np.asarray(hourly, dtype=float)
    kw = kw / kw.sum() * annual_kwh
    return _to_steps(kw, 1.0, year, standard_offset_h(timezone, year), index)
