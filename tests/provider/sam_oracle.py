"""NREL's own reading of a URDB tariff, as the oracle for openmeg's bills: the tariff converted by
``PySAM.UtilityRateTools.URDBv8_to_ElectricityRates`` and billed by ``PySAM.Utilityrate5`` over a
year of 15-minute import and export (SAM's year starts on a Monday and has 365 days, as 2018)."""

from __future__ import annotations

import copy
from typing import Any

import numpy as np

from openmeg.core.tariff import Tariff

# openmeg's names for SAM settings that URDB does not carry
OPENMEG_ONLY = {
    "name",
    "realtime",
    "nm_credit_month",
    "nm_yearend_sell_rate",
    "nb_credit_expire",
    "nb_apply_credit_current_month",
}
COMPONENTS = {
    "energy": "year1_monthly_ec_charge_with_system",
    "demand_flat": "year1_monthly_dc_fixed_with_system",
    "demand_tou": "year1_monthly_dc_tou_with_system",
    "fixed": "year1_monthly_fixed_with_system",
    "minimum": "year1_monthly_minimum_with_system",
    "total": "year1_monthly_utility_bill_w_sys",
}


def _present(value: Any) -> bool:
    return value not in (None, [], "")


def sam_rates(tariff: Tariff) -> dict[str, Any]:
    """``ElectricityRates`` inputs for PySAM from the tariff's URDB fields (NREL's converter)."""
    from PySAM.UtilityRateTools import URDBv8_to_ElectricityRates

    urdb = {
        k: v
        for k, v in tariff.model_dump(exclude_none=True).items()
        if k not in OPENMEG_ONLY and _present(v)
    }
    rates: dict[str, Any] = URDBv8_to_ElectricityRates(copy.deepcopy(urdb))
    rates["ur_nm_credit_month"] = tariff.nm_credit_month - 1
    rates["ur_nm_yearend_sell_rate"] = tariff.nm_yearend_sell_rate
    rates["ur_nb_credit_expire"] = int(tariff.nb_credit_expire)
    rates["ur_nb_apply_credit_current_month"] = int(tariff.nb_apply_credit_current_month)
    return rates


def sam_year(
    rates: dict[str, Any], import_kwh: np.ndarray, export_kwh: np.ndarray
) -> dict[str, np.ndarray]:
    """SAM's monthly components (12 values each) for one customer's year of 15-minute kWh."""
    import PySAM.Utilityrate5 as Utilityrate5

    model = Utilityrate5.new()
    model.ElectricityRates.assign(rates)
    model.ElectricityRates.rate_escalation = [0]
    model.Lifetime.analysis_period = 1
    model.Lifetime.system_use_lifetime_output = 0
    model.Lifetime.inflation_rate = 0
    model.Load.load_escalation = [0]
    model.SystemOutput.degradation = [0]
    model.Load.load = tuple(np.asarray(import_kwh) / 0.25)  # kW, 15-minute averages
    model.SystemOutput.gen = tuple(np.asarray(export_kwh) / 0.25)
    model.execute(0)
    out = model.Outputs
    result = {name: np.asarray(getattr(out, field)) for name, field in COMPONENTS.items()}
    result["true_up"] = np.asarray(out.true_up_credits_ym)[1]
    return result


def synthetic_customers(
    index_local: Any, n: int, *, seed: int, pv_share: float = 0.5
) -> tuple[np.ndarray, np.ndarray]:
    """(load, pv) kWh per 15 minutes [n x intervals] for ``n`` households and shops on
    ``index_local`` (a local DatetimeIndex); a ``pv_share`` of them with rooftop PV."""
    rng = np.random.default_rng(seed)
    hour = index_local.hour.to_numpy() + index_local.minute.to_numpy() / 60
    doy = index_local.dayofyear.to_numpy()
    weekend = index_local.dayofweek.to_numpy() >= 5
    base = rng.uniform(0.1, 0.6, (n, 1))
    evening = rng.uniform(0.3, 1.5, (n, 1)) * np.exp(-(((hour - 19) / 2.5) ** 2))
    summer = 1 + rng.uniform(0.1, 0.8, (n, 1)) * np.exp(-(((doy - 200) / 45) ** 2))
    day = rng.uniform(0.0, 1.0, (n, 1)) * ((hour >= 9) & (hour < 17) & ~weekend)
    seldom = np.where(rng.random((n, 1)) < 0.2, rng.uniform(0.03, 0.2, (n, 1)), 1.0)
    noise = rng.lognormal(0.0, 0.35, (n, len(hour)))
    load_kw = (base + evening + day) * summer * noise * seldom
    spikes = rng.random((n, len(hour))) < 0.002
    load_kw = load_kw + spikes * rng.uniform(3, 12, (n, len(hour)))
    sun = np.clip(np.cos((hour - 12.5) / 6.5 * np.pi / 2), 0, None) ** 1.5
    season = 0.75 + 0.25 * np.cos((doy - 172) / 365 * 2 * np.pi)
    clouds = rng.uniform(0.3, 1.0, (n, len(np.unique(doy))))[:, doy - doy.min()]
    size_kw = rng.uniform(3, 10, (n, 1)) * (rng.random((n, 1)) < pv_share)
    pv_kw = size_kw * sun * season * clouds
    return load_kw * 0.25, pv_kw * 0.25
