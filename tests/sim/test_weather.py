"""The typical years openmeg reads: the PVGIS year it ships (values at their UTC stamps) and
pvlib's TMY3 files (values at the middle of their hour, local standard time)."""

import numpy as np
import pandas as pd
import pytest

from openmeg.sim.weather import DEMO_WEATHER, load_weather, typical_year, weather_path


def test_the_pvgis_year_is_taken_at_its_utc_stamps() -> None:
    data, first = typical_year(DEMO_WEATHER)
    assert first == 0.0 and len(data) == 8760
    # the file's row of 15 June 10:00 UTC (hour 3946 of the year), as written in it
    row = data.iloc[(31 + 28 + 31 + 30 + 31 + 14) * 24 + 10]
    at = pd.DatetimeIndex(["2026-06-15T10:00Z", "2026-06-15T10:30Z"])
    w = load_weather(DEMO_WEATHER, at)
    assert w.ghi[0] == row.ghi and w.temp_air_c[0] == row.temp_air
    after = data.iloc[(31 + 28 + 31 + 30 + 31 + 14) * 24 + 11]
    assert w.ghi[1] == pytest.approx((row.ghi + after.ghi) / 2)
    # a year of 1,511 kWh/m² on the horizontal in Piedmont, its noon near 11:30 UTC (8 E)
    assert data.ghi.sum() / 1000 == pytest.approx(1511.35, abs=0.01)
    g = data.ghi.to_numpy().reshape(365, 24)
    assert 11.2 < (g * np.arange(24)).sum() / g.sum() < 11.5


def test_a_tmy3_hour_is_placed_at_its_middle_in_utc() -> None:
    data, first = typical_year("723170TYA.CSV")  # Greensboro, UTC-5: hour ending 01:00 LST
    assert first == 5.5
    w = load_weather("723170TYA.CSV", pd.DatetimeIndex(["2026-01-01T05:30Z"]))
    assert w.temp_air_c[0] == data.temp_air.iloc[0]


def test_a_weather_file_that_is_nowhere_says_what_is_shipped() -> None:
    with pytest.raises(FileNotFoundError, match=r"openmeg ships pvgis_tmy_45\.000_8\.000"):
        weather_path("no-such-year.csv")
