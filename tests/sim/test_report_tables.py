"""The study report's calculations and formatting, on tiny hand-computed cases."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from openmeg.core import en50160
from openmeg.der.ratings import CHP, FuelCell, HeatStorage
from openmeg.sim import report_format as f
from openmeg.sim.report_tables import (
    capacity_factor,
    daily_min_max,
    duration_curve,
    excursions,
    hour_of_week_quantiles,
    level_throughput_kwh,
    monthly_energy_kwh,
    running_hours_and_starts,
)


def test_monthly_energy_counts_local_months() -> None:
    # 2026-01-31 23:00 .. 2026-02-01 06:00 UTC is 18:00 .. 01:00 in New York: hours before
    # 05:00 UTC belong to local January
    index = pd.date_range("2026-01-31 23:00", periods=8, freq="1h", tz="UTC")
    rows = np.array([[1.0, 2, 3, 4, 5, 6, 7, 8]])
    out = monthly_energy_kwh(index, "America/New_York", rows, ["pv"], 1.0)
    assert out == {"2026-01": {"pv": 1 + 2 + 3 + 4 + 5 + 6}, "2026-02": {"pv": 7 + 8}}
    assert monthly_energy_kwh(index, "UTC", rows, ["pv"], 0.5) == {
        "2026-01": {"pv": 0.5},
        "2026-02": {"pv": 17.5},
    }


def test_running_hours_and_starts() -> None:
    p = np.array([0, 30, 40, 0, 0, 25, 0, 50.0])
    assert running_hours_and_starts(p, 0.25) == (1.0, 3)
    assert running_hours_and_starts(p[1:], 0.25, was_on=True) == (1.0, 2)
    assert running_hours_and_starts(np.zeros(0), 1.0) == (0.0, 0)


def test_level_throughput_and_capacity_factor() -> None:
    # from 100: up 50, down 30, up 10, down 80
    assert level_throughput_kwh(np.array([150, 120, 130, 50.0]), 100.0) == (60.0, 110.0)
    assert capacity_factor(8760.0, 10.0, 8760.0) == pytest.approx(0.1)
    assert capacity_factor(1.0, 0.0, 10.0) == 0.0


def test_excursions_per_bus_and_side() -> None:
    index = pd.date_range("2026-03-02", periods=6, freq="1h", tz="UTC")
    vm = np.array(
        [
            [1.00, 0.95],
            [0.89, 1.12],
            [0.84, 1.11],
            [0.95, 1.00],
            [0.899, 1.00],
            [1.00, 0.90],  # exactly Un - 10 %: within
        ]
    )
    found = excursions(index, vm, ["A", "B"])
    assert [(x.bus, x.start, x.end, x.samples, x.extreme_pu, x.band) for x in found] == [
        ("A", index[1], index[2], 2, 0.84, en50160.OUTSIDE),
        ("A", index[4], index[4], 1, 0.899, en50160.TOLERATED),
        ("B", index[1], index[2], 2, 1.12, en50160.OUTSIDE),
    ]


def test_duration_curve_week_quantiles_and_daily_band() -> None:
    assert duration_curve(np.array([1.0, -2, 3])).tolist() == [3.0, 1.0, -2.0]
    # two Mondays 00:00 local: 10 and 20 kW; the median is 15
    index = pd.DatetimeIndex(["2026-03-02 00:30", "2026-03-09 00:10"]).tz_localize("Europe/Rome")
    q = hour_of_week_quantiles(index, np.array([10.0, 20.0]))
    assert q.shape == (168, 3) and q.loc[0, 0.5] == 15.0 and np.isnan(q.loc[1, 0.5])
    day = pd.date_range("2026-03-02 00:00", periods=48, freq="1h", tz="Europe/Rome")
    band = daily_min_max(day, np.arange(48.0))
    assert band.to_numpy().tolist() == [[0.0, 23.0], [24.0, 47.0]]


def test_numbers_as_people_read_them() -> None:
    assert f.kwh(854917.095) == "854,917 kWh"
    assert f.kwh(51.709) == "51.7 kWh"
    assert f.kwh(0.011037) == "0.011 kWh"
    assert f.kwh(-0.0001) == "0.000 kWh"
    assert f.number(-0.2) == "-0.200" and f.number(-0.4, 0) == "0"
    assert f.pu(0.8925466) == "0.893 p.u."
    assert f.percent(0.6286) == "62.9 %"
    assert f.hours(9.5) == "9.5 h"
    assert f.with_unit(None, "kW") == "–"
    assert f.local_time("2026-12-09T14:45:00+00:00", "America/New_York") == "2026-12-09 09:45 EST"
    assert f.local_time("2026-07-21T21:00:00+00:00", "Europe/Rome") == "2026-07-21 23:00 CEST"


def test_fuel_based_devices_burn_natural_gas_by_default() -> None:
    chp = CHP(
        id="c",
        kind="chp",
        bus="b",
        owner="community",
        p_el_max_kw=50,
        p_el_min_kw=25,
        eta_el=0.33,
        eta_th=0.55,
        heat_storage="h",
    )
    fc = FuelCell(
        id="f", kind="fuel_cell", bus="b", owner="community", p_max_kw=25, p_set_kw=15, eta_el=0.5
    )
    hs = HeatStorage(
        id="h", kind="heat_storage", bus="b", owner="community", capacity_kwh=600, boiler_kw=250
    )
    # 56,100 kg CO2 per TJ of natural gas (IPCC 2006) is 0.20196 kg per kWh of fuel
    assert round(56_100 * 3.6e-6, 3) == 0.202
    assert chp.co2_kg_per_kwh_fuel == fc.co2_kg_per_kwh_fuel == hs.boiler_co2_kg_per_kwh_fuel
    assert fc.co2_kg_per_kwh_fuel == 0.202
    assert "IPCC" in FuelCell.model_fields["co2_kg_per_kwh_fuel"].description  # type: ignore[operator]
