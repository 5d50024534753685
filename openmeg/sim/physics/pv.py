"""PV output with pvlib's PVWatts model.

All powers in kW, irradiance in W/m², temperatures in °C; arrays are time series.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import pandas as pd
import pvlib

FloatArray = npt.NDArray[np.float64]


def plane_of_array_w_m2(
    weather: pd.DataFrame, solar_position: pd.DataFrame, *, tilt_deg: float, azimuth_deg: float
) -> FloatArray:
    """Irradiance on the module plane (isotropic sky), W/m²; never negative."""
    poa = pvlib.irradiance.get_total_irradiance(
        surface_tilt=tilt_deg,
        surface_azimuth=azimuth_deg,
        solar_zenith=solar_position["apparent_zenith"],
        solar_azimuth=solar_position["azimuth"],
        dni=weather["dni"],
        ghi=weather["ghi"],
        dhi=weather["dhi"],
    )
    poa_w_m2: FloatArray = np.clip(
        np.nan_to_num(np.asarray(poa["poa_global"], dtype=float)), 0, None
    )
    return poa_w_m2


def cell_temperature_c(
    poa_w_m2: FloatArray, temp_air_c: FloatArray, wind_m_s: FloatArray
) -> FloatArray:
    """Cell temperature with the SAPM model, open-rack glass/polymer mounting."""
    params = pvlib.temperature.TEMPERATURE_MODEL_PARAMETERS["sapm"]["open_rack_glass_polymer"]
    return np.asarray(
        pvlib.temperature.sapm_cell(poa_w_m2, temp_air_c, wind_m_s, **params), dtype=float
    )


def pv_ac_kw(
    poa_w_m2: FloatArray,
    temp_cell_c: FloatArray,
    *,
    dc_kwp: float,
    inverter_kw: float,
    system_losses: float,
    gamma_pdc_per_c: float,
) -> FloatArray:
    """AC output, kW: PVWatts DC, system losses, PVWatts inverter clipped at ``inverter_kw``.

    At 1000 W/m² and 25 °C the DC output is exactly ``dc_kwp``.
    """
    pdc = pvlib.pvsystem.pvwatts_dc(poa_w_m2, temp_cell_c, dc_kwp, gamma_pdc_per_c)
    pdc = np.asarray(pdc, dtype=float) * (1.0 - system_losses)
    eta_nom = 0.96
    pac = pvlib.inverter.pvwatts(pdc, inverter_kw / eta_nom, eta_inv_nom=eta_nom)
    ac_kw: FloatArray = np.clip(np.nan_to_num(np.asarray(pac, dtype=float)), 0.0, inverter_kw)
    return ac_kw
