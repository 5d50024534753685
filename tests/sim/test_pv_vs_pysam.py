"""The plant's PV output checked against NREL's SAM (PySAM PVWatts v8) on the same typical year
(the demo's: PVGIS at 45 N 8 E), given to SAM as data in UTC."""

from datetime import UTC, datetime

import numpy as np
import pandas as pd
import PySAM.Pvwattsv8 as pvwatts
import pytest

from openmeg.core.site import load_site, network_of
from openmeg.der.ratings import PV
from openmeg.sim.plant import build_plant
from openmeg.sim.weather import typical_year


@pytest.fixture(scope="module")
def hourly() -> tuple[np.ndarray, np.ndarray]:
    site = load_site("demo")
    pv = site.device_as("pv-h01", PV)
    assert site.scenario is not None
    physics = site.scenario.physics(pv.id, pv.kind)
    plant = build_plant(site, network_of(site), datetime(2026, 1, 1, tzinfo=UTC), 525600, 60.0)

    data, first = typical_year(site.scenario.weather)
    # record k stands for UTC hour-of-year k + first (PVGIS: its stamp; TMY3: its hour's middle)
    at = pd.Timestamp("2026-01-01", tz="UTC") + pd.to_timedelta(
        np.mod(np.arange(8760) + first, 8760), unit="h"
    )
    sam = pvwatts.default("PVWattsNone")
    sam.SolarResource.solar_resource_data = {
        "lat": site.site.latitude,
        "lon": site.site.longitude,
        "tz": 0,
        "elev": site.site.altitude_m,
        "year": [2026] * 8760,
        "month": list(at.month),
        "day": list(at.day),
        "hour": list(at.hour),
        "minute": list(at.minute),
        "dn": list(data["dni"]),
        "df": list(data["dhi"]),
        "gh": list(data["ghi"]),
        "tdry": list(data["temp_air"]),
        "wspd": list(data["wind_speed"]),
    }
    design = sam.SystemDesign
    design.system_capacity = physics.dc_kwp
    design.dc_ac_ratio = physics.dc_kwp / pv.inverter_kw
    design.tilt, design.azimuth = physics.tilt_deg, physics.azimuth_deg
    design.losses = physics.system_losses * 100
    design.array_type, design.module_type, design.inv_eff = 0, 0, 96.0
    sam.execute()
    sam_records = np.array(sam.Outputs.ac) / 1000.0  # kW, one a record
    # ours at the instants of SAM's records (a minute's step: minute 60 * (k + first) of 2026)
    minutes = np.round(60 * np.mod(np.arange(8760) + first, 8760)).astype(int)
    ours = plant.ren_avail[plant.ren_ids.index(pv.id)][minutes]
    order = np.argsort(minutes)  # in time order from 1 January 00:00 UTC
    return ours[order], sam_records[order]


def test_annual_and_monthly_energy_agree_with_sam(hourly: tuple[np.ndarray, np.ndarray]) -> None:
    ours, sam = hourly
    assert ours.sum() == pytest.approx(sam.sum(), rel=0.02)
    idx = pd.date_range("2026-01-01", periods=8760, freq="h", tz="UTC")
    monthly = pd.Series(ours, idx).resample("MS").sum() / pd.Series(sam, idx).resample("MS").sum()
    assert monthly.between(0.92, 1.08).all(), monthly.round(3).to_dict()


def test_hourly_timing_agrees_with_sam(hourly: tuple[np.ndarray, np.ndarray]) -> None:
    ours, sam = hourly
    aligned = np.corrcoef(ours, sam)[0, 1]
    assert aligned > 0.99
    for shift in (-1, 1):  # an hour off in time zone or labelling would show here
        assert np.corrcoef(ours, np.roll(sam, shift))[0, 1] < aligned - 0.02
