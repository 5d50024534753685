"""openmeg's bills against NREL's: PySAM ``Utilityrate5`` on the same tariffs (converted by
NREL's own ``URDBv8_to_ElectricityRates``) and the same 30 customers (half with PV) for the 12
months of a year at 15 minutes; every monthly component within a cent.

The year is 2018 in Phoenix (no daylight saving time, and the year starts on a Monday, as SAM's
does), so local time is SAM's time."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import numpy as np
import pandas as pd
import pytest

from openmeg.core.tariff import Tariff
from openmeg.provider.bill_carry import Carry
from openmeg.provider.bill_matrix import bill_arrays
from openmeg.provider.billing import bills_from_arrays
from tests.provider.sam_oracle import sam_rates, sam_year, synthetic_customers

pytest.importorskip("PySAM.Utilityrate5")

TZ = "America/Phoenix"
LOCAL = pd.date_range("2018-01-01", periods=365 * 96, freq="15min", tz=TZ)
UTC = LOCAL.tz_convert("UTC")
N = 30
LOAD, PV = synthetic_customers(LOCAL, N, seed=12)
IMPORT = np.maximum(LOAD - PV, 0.0)
EXPORT = np.maximum(PV - LOAD, 0.0)
SUMMER = range(5, 9)  # June to September (0-based months)


def schedule(
    periods: dict[range, int], default: int = 0, summer: dict[range, int] | None = None
) -> list[list[int]]:
    rows = []
    for month in range(12):
        spans = summer if summer is not None and month in SUMMER else periods
        row = [default] * 24
        for hours, period in spans.items():
            for h in hours:
                row[h] = period
        rows.append(row)
    return rows


WEEKEND = [[0] * 24 for _ in range(12)]
TARIFFS: dict[str, dict[str, Any]] = {
    # seasonal TOU energy with two tiers over the month's total, net metering with kWh carried
    # to the same period, a March true-up paid at 3 cents; $/day fixed and $/month minimum
    "tou_tiers_net_metering": {
        "energyratestructure": [
            [{"max": 600, "rate": 0.09, "sell": 0.03}, {"rate": 0.12, "sell": 0.03}],
            [{"max": 600, "rate": 0.21, "sell": 0.03}, {"rate": 0.26, "sell": 0.03}],
            [{"max": 600, "rate": 0.10, "sell": 0.03}, {"rate": 0.14, "sell": 0.03}],
            [{"max": 600, "rate": 0.32, "sell": 0.03}, {"rate": 0.38, "sell": 0.03}],
        ],
        "energyweekdayschedule": schedule(
            {range(17, 21): 1}, 0, {range(0, 14): 2, range(14, 20): 3, range(20, 24): 2}
        ),
        "energyweekendschedule": schedule({}, 0, {range(0, 24): 2}),
        "fixedchargefirstmeter": 0.40,
        "fixedchargeunits": "$/day",
        "mincharge": 25.0,
        "minchargeunits": "$/month",
        "dgrules": "Net Metering",
        "nm_credit_month": 3,
        "nm_yearend_sell_rate": 0.03,
    },
    # seasonal TOU and flat demand with tiers, net billing with a sell rate, annual minimum
    "demand_seasonal_net_billing": {
        "energyratestructure": [[{"rate": 0.085, "sell": 0.04}]],
        "energyweekdayschedule": WEEKEND,
        "energyweekendschedule": WEEKEND,
        "demandratestructure": [
            [{"max": 6, "rate": 1.5}, {"rate": 2.0}],
            [{"max": 6, "rate": 8.0}, {"rate": 11.0}],
        ],
        "demandweekdayschedule": schedule({}, 0, {range(12, 19): 1}),
        "demandweekendschedule": WEEKEND,
        "flatdemandstructure": [[{"rate": 4.0}], [{"max": 8, "rate": 6.0}, {"rate": 9.0}]],
        "flatdemandmonths": [1 if m in SUMMER else 0 for m in range(12)],
        "fixedchargefirstmeter": 25.0,
        "mincharge": 1500.0,
        "minchargeunits": "$/year",
        "dgrules": "Net Billing Instantaneous",
    },
    # three periods, tiers in kWh a day, sell rates per tier, a minimum in $/day
    "net_billing_daily_tiers": {
        "energyratestructure": [
            [
                {"max": 8, "unit": "kWh daily", "rate": 0.08, "sell": 0.05},
                {"rate": 0.11, "sell": 0.04},
            ],
            [
                {"max": 8, "unit": "kWh daily", "rate": 0.15, "sell": 0.06},
                {"rate": 0.19, "sell": 0.05},
            ],
            [
                {"max": 8, "unit": "kWh daily", "rate": 0.27, "sell": 0.07},
                {"rate": 0.33, "sell": 0.06},
            ],
        ],
        "energyweekdayschedule": schedule({range(7, 16): 1, range(16, 21): 2}),
        "energyweekendschedule": schedule({range(7, 21): 1}),
        "mincharge": 1.0,
        "minchargeunits": "$/day",
        "dgrules": "Net Billing Instantaneous",
    },
    # two meters: all load bought (tiers), all PV sold (tiers of sell rates); demand; minimum
    "buy_all_sell_all": {
        "energyratestructure": [
            [{"max": 500, "rate": 0.10, "sell": 0.06}, {"rate": 0.13, "sell": 0.05}],
            [{"max": 500, "rate": 0.24, "sell": 0.09}, {"rate": 0.29, "sell": 0.08}],
        ],
        "energyweekdayschedule": schedule({range(16, 21): 1}),
        "energyweekendschedule": WEEKEND,
        "flatdemandstructure": [[{"rate": 3.5}]],
        "flatdemandmonths": [0] * 12,
        "fixedchargefirstmeter": 10.0,
        "mincharge": 60.0,
        "dgrules": "Buy All Sell All",
    },
    # net billing whose credit pays the next months, paid out (true-up) in September
    "net_billing_carryover": {
        "energyratestructure": [
            [{"max": 700, "rate": 0.11, "sell": 0.07}, {"rate": 0.15, "sell": 0.05}],
            [{"max": 700, "rate": 0.25, "sell": 0.10}, {"rate": 0.30, "sell": 0.09}],
        ],
        "energyweekdayschedule": schedule({range(15, 20): 1}),
        "energyweekendschedule": WEEKEND,
        "fixedchargefirstmeter": 120.0,
        "fixedchargeunits": "$/year",
        "dgrules": "Net Billing Hourly",
        "nm_credit_month": 9,
    },
    # no dgrules: net metering (NREL's reading); tiers in kWh per kW of the month's peak;
    # December true-up
    "kwh_per_kw_default_net_metering": {
        "energyratestructure": [
            [{"max": 150, "unit": "kWh/kW", "rate": 0.07}, {"unit": "kWh/kW", "rate": 0.13}],
            [{"max": 150, "unit": "kWh/kW", "rate": 0.18}, {"unit": "kWh/kW", "rate": 0.24}],
        ],
        "energyweekdayschedule": schedule({range(14, 20): 1}),
        "energyweekendschedule": WEEKEND,
        "fixedchargefirstmeter": 14.0,
        "nm_yearend_sell_rate": 0.025,
    },
}


def openmeg_year(tariff: Tariff, imp: np.ndarray, exp: np.ndarray) -> dict[str, np.ndarray]:
    """Monthly components [customers x 12] from openmeg, month after month with the carry."""
    out: dict[str, list[np.ndarray]] = {}
    carry: Carry | None = None
    for month in range(1, 13):
        cols = LOCAL.month == month
        index = UTC[cols]
        arrays, carry = bill_arrays(
            tariff, index, imp[:, cols], exp[:, cols], timezone=TZ, carry_in=carry
        )
        for name, values in arrays.components.items():
            out.setdefault(name, []).append(values)
        bills = bills_from_arrays(
            arrays,
            tariff=tariff.name,
            customers=[f"c{i}" for i in range(N)],
            meters=[f"m{i}" for i in range(N)],
            start=LOCAL[cols][0],
            end=LOCAL[cols][-1] + pd.Timedelta(minutes=15),
        )
        for i, b in enumerate(bills):  # the lines add up to the total, to the cent
            assert b.total == Decimal(int(arrays.total_cents[i])) / 100
            assert (
                abs(float(b.total) - arrays.components["total"][i]) <= 0.005 * len(b.lines) + 1e-9
            )
    return {name: np.array(v).T for name, v in out.items()}


@pytest.mark.parametrize("name", list(TARIFFS))
def test_every_monthly_component_equals_pysam(name: str) -> None:
    tariff = Tariff.model_validate({"name": name, **TARIFFS[name]})
    two_meters = tariff.dgrules == "Buy All Sell All"
    imp, exp = (LOAD, PV) if two_meters else (IMPORT, EXPORT)
    ours = openmeg_year(tariff, imp, exp)
    rates = sam_rates(tariff)
    for c in range(N):
        sam = sam_year(rates, imp[c], exp[c])
        for component, values in sam.items():
            np.testing.assert_allclose(
                ours[component][c],
                values,
                rtol=0,
                atol=0.01,
                err_msg=f"{name}: customer {c}, {component}",
            )
    # the cases are really exercised, not passed vacuously
    total = ours["total"]
    assert np.isfinite(total).all() and (total != 0).any()
    assert (ours["energy"] != 0).any()
    if tariff.mincharge:
        assert (ours["minimum"] > 0).any(), "no customer met the minimum charge"
    if tariff.nm_yearend_sell_rate or tariff.dgrules == "Net Billing Hourly":
        assert (ours["true_up"] > 0).any(), "no customer had a true-up credit"
    if tariff.demandratestructure:
        assert (ours["demand_tou"] > 0).any()
    if tariff.flatdemandstructure:
        assert (ours["demand_flat"] > 0).any()
