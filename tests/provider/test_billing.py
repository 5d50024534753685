"""Bills computed by hand for October 2026 in New York (31 days, no clock change; the 1st is a
Thursday, so the month has 22 weekdays), with URDB-structured tariffs."""

from decimal import Decimal

import numpy as np
import pandas as pd
import pytest
from pydantic import ValidationError

from openmeg.core.tariff import Tariff
from openmeg.provider.billing import Carry, bill, bill_month

TZ = "America/New_York"
START = pd.Timestamp("2026-10-01", tz=TZ)
END = pd.Timestamp("2026-11-01", tz=TZ)
IDX = pd.date_range(START.tz_convert("UTC"), END.tz_convert("UTC"), freq="15min", inclusive="left")
LOCAL = IDX.tz_convert(TZ)
ALL_OFF = [[0] * 24 for _ in range(12)]
PEAK = [[1 if 16 <= h < 21 else 0 for h in range(24)] for _ in range(12)]  # weekdays 16-21 h


def flat(kwh: float) -> pd.Series:
    return pd.Series(kwh, index=IDX)


def run(tariff: dict, imp: pd.Series, exp: pd.Series | None = None) -> tuple[Decimal, list]:  # type: ignore[type-arg]
    b = bill(
        Tariff.model_validate(tariff),
        imp,
        exp if exp is not None else flat(0.0),
        timezone=TZ,
        customer="h01",
        meter="m-h01",
        start=START,
        end=END,
    )
    return b.total, [(ln.description, ln.quantity, ln.amount) for ln in b.lines]


def test_flat_rate_and_fixed_charge() -> None:
    # 2976 quarter hours x 0.25 kWh = 744 kWh x $0.12 = $89.28, plus $10 a month
    total, lines = run(
        {
            "energyratestructure": [[{"rate": 0.12}]],
            "energyweekdayschedule": ALL_OFF,
            "energyweekendschedule": ALL_OFF,
            "fixedchargefirstmeter": 10.0,
        },
        flat(0.25),
    )
    assert lines == [
        ("fixed charge", Decimal("1.0"), Decimal("10.00")),
        ("energy", Decimal("744.0"), Decimal("89.28")),
    ]
    assert total == Decimal("99.28")


def test_tiered_energy() -> None:
    # 500 kWh at $0.10 and 244 kWh at $0.15: $50.00 + $36.60
    total, lines = run(
        {
            "energyratestructure": [[{"max": 500, "rate": 0.10}, {"rate": 0.15}]],
            "energyweekdayschedule": ALL_OFF,
            "energyweekendschedule": ALL_OFF,
        },
        flat(0.25),
    )
    assert [ln[2] for ln in lines] == [Decimal("50.00"), Decimal("36.60")]
    assert total == Decimal("86.60")


def test_time_of_use_energy() -> None:
    # 22 weekdays x 5 peak hours x 1 kWh = 110 kWh at $0.30 = $33.00; 634 kWh at $0.08 = $50.72
    total, lines = run(
        {
            "energyratestructure": [[{"rate": 0.08}], [{"rate": 0.30}]],
            "energyweekdayschedule": PEAK,
            "energyweekendschedule": ALL_OFF,
        },
        flat(0.25),
    )
    assert lines == [
        ("energy, period 1", Decimal("634.0"), Decimal("50.72")),
        ("energy, period 2", Decimal("110.0"), Decimal("33.00")),
    ]
    assert total == Decimal("83.72")


def test_time_of_use_and_flat_demand_charges() -> None:
    imp = flat(0.25)
    imp[(LOCAL.day == 14) & (LOCAL.hour == 17) & (LOCAL.minute == 30)] = (
        2.0  # 8 kW on a weekday peak
    )
    imp[(LOCAL.day == 18) & (LOCAL.hour == 3) & (LOCAL.minute == 0)] = (
        1.5  # 6 kW off-peak, a Sunday
    )
    tariff = {
        "demandratestructure": [[{"rate": 2.0}], [{"rate": 10.0}]],
        "demandweekdayschedule": PEAK,
        "demandweekendschedule": ALL_OFF,
        "flatdemandstructure": [[{"max": 5, "rate": 12.0}, {"rate": 15.0}]],
        "flatdemandmonths": [0] * 12,
    }
    total, lines = run(tariff, imp)
    # TOU: off-peak max 6 kW x $2 = $12; peak 8 kW x $10 = $80; monthly 8 kW: 5 x $12 + 3 x $15
    assert [(ln[0], ln[2]) for ln in lines] == [
        ("demand, period 1", Decimal("12.00")),
        ("demand, period 2", Decimal("80.00")),
        ("demand, tier 1", Decimal("60.00")),
        ("demand, tier 2", Decimal("45.00")),
    ]
    assert total == Decimal("197.00")


def test_minimum_charge() -> None:
    # 29.76 kWh x $0.12 = $3.5712 -> $3.57, plus $10 fixed: $13.57 < $50: adjustment $36.43
    total, lines = run(
        {
            "energyratestructure": [[{"rate": 0.12}]],
            "energyweekdayschedule": ALL_OFF,
            "energyweekendschedule": ALL_OFF,
            "fixedchargefirstmeter": 10.0,
            "mincharge": 50.0,
        },
        flat(0.01),
    )
    assert lines[-1] == ("minimum charge adjustment", Decimal(1), Decimal("36.43"))
    assert total == Decimal("50.00")


def _pv_day() -> tuple[pd.Series, pd.Series]:
    sunny = (LOCAL.hour >= 10) & (LOCAL.hour < 14)
    imp = pd.Series(0.25, index=IDX).where(~sunny, 0.0)  # 20 h x 1 kWh = 20 kWh a day
    exp = pd.Series(0.5, index=IDX).where(sunny, 0.0)  # 4 h x 2 kWh = 8 kWh a day
    return imp, exp


def test_net_metering_and_net_billing_with_pv_export() -> None:
    imp, exp = _pv_day()  # a month: 620 kWh in, 248 kWh out
    base = {
        "energyratestructure": [[{"rate": 0.12, "sell": 0.04}]],
        "energyweekdayschedule": ALL_OFF,
        "energyweekendschedule": ALL_OFF,
    }
    total, lines = run({**base, "dgrules": "Net Metering"}, imp, exp)
    assert lines == [("energy", Decimal("372.0"), Decimal("44.64"))]  # 372 kWh net x $0.12
    total, lines = run({**base, "dgrules": "Net Billing Instantaneous"}, imp, exp)
    assert lines == [
        ("energy", Decimal("620.0"), Decimal("74.40")),
        ("energy, export credit", Decimal("-248.0"), Decimal("-9.92")),
    ]
    assert total == Decimal("64.48")
    # 992 kWh out: a net export of 372 kWh is not paid now (NREL's net metering) but carried,
    # as kWh, to the same period of November, where it covers 372 of November's 600 kWh
    more_out = exp * 4
    total, lines = run({**base, "dgrules": "Net Metering"}, imp, more_out)
    assert (total, lines) == (Decimal("0.00"), [])
    tariff = Tariff.model_validate(base)  # no dgrules: net metering, as NREL reads URDB
    (october,), carry = bill_month(
        tariff,
        IDX,
        imp.to_numpy()[None, :],
        more_out.to_numpy()[None, :],
        timezone=TZ,
        customers=["h01"],
        meters=["m-h01"],
    )
    assert october.total == Decimal("0.00")
    assert carry.month == 10 and carry.surplus_kwh.tolist() == [[372.0]]
    assert carry.excess_kwh.tolist() == [372.0]
    nov = pd.date_range(
        END.tz_convert("UTC"),
        pd.Timestamp("2026-12-01", tz=TZ).tz_convert("UTC"),
        freq="15min",
        inclusive="left",
    )  # 30 days and the clock change: 2884 quarter hours
    use = np.full((1, len(nov)), 600 / len(nov))
    (november,), carry = bill_month(
        tariff,
        nov,
        use,
        use * 0,
        timezone=TZ,
        customers=["h01"],
        meters=["m-h01"],
        carry_in=carry,
    )
    assert [(ln.description, ln.amount) for ln in november.lines] == [
        ("energy", Decimal("27.36"))  # (600 - 372) kWh x $0.12
    ]
    assert carry.surplus_kwh.tolist() == [[0.0]] and carry.excess_kwh.tolist() == [0.0]


def test_hourly_real_time_prices() -> None:
    hours = pd.date_range(
        START.tz_convert("UTC"), END.tz_convert("UTC"), freq="h", inclusive="left"
    )
    prices = [{"start": h.isoformat(), "buy": 0.10, "sell": 0.05} for h in hours]
    prices[1] = {"start": hours[1].isoformat(), "buy": 0.50, "sell": 0.20}
    prices[2] = {"start": hours[2].isoformat(), "buy": -0.02, "sell": -0.05}  # negative prices
    imp = flat(0.0)
    imp.iloc[0:8] = 0.25  # 1 kWh in hour 0 and 1 kWh in hour 1
    exp = flat(0.0)
    exp.iloc[8:12] = 0.5  # 2 kWh out in hour 2, when selling costs $0.05 a kWh
    total, lines = run({"realtime": prices}, imp, exp)
    assert lines == [
        ("energy at real-time prices", Decimal("2.0"), Decimal("0.60")),
        ("export at real-time prices", Decimal("-2.0"), Decimal("0.10")),
    ]
    assert total == Decimal("0.70")


def test_bad_tariffs_and_missing_data_are_refused() -> None:
    with pytest.raises(ValidationError, match="12 months x 24 hours"):
        Tariff.model_validate(
            {
                "energyratestructure": [[{"rate": 0.1}]],
                "energyweekdayschedule": [[0] * 24],
                "energyweekendschedule": ALL_OFF,
            }
        )
    with pytest.raises(ValidationError, match="names periods \\[1\\]"):
        Tariff.model_validate(
            {
                "energyratestructure": [[{"rate": 0.1}]],
                "energyweekdayschedule": PEAK,
                "energyweekendschedule": ALL_OFF,
            }
        )
    with pytest.raises(ValueError, match="no validated import reading for 2026-10-01T04:00"):
        run(
            {
                "energyratestructure": [[{"rate": 0.1}]],
                "energyweekdayschedule": ALL_OFF,
                "energyweekendschedule": ALL_OFF,
            },
            flat(0.25).iloc[1:],
        )


TIERED_TOU = {
    "energyratestructure": [
        [{"max": 300, "rate": 0.10}, {"rate": 0.20}],
        [{"max": 300, "rate": 0.30}, {"rate": 0.50}],
    ],
    "energyweekdayschedule": PEAK,
    "energyweekendschedule": ALL_OFF,
}


def test_tiers_fill_with_the_months_total_in_time_order_under_net_billing() -> None:
    # 1 kWh an hour: the first 300 kWh are the first 300 hours (to 13 October, 12:00), whose
    # 8 weekdays hold 40 peak kWh; the rest of the 110 peak kWh (70) and of the 634 off-peak
    # kWh (374) are in tier 2: 260 x 0.10 + 374 x 0.20 + 40 x 0.30 + 70 x 0.50
    total, lines = run({**TIERED_TOU, "dgrules": "Net Billing Instantaneous"}, flat(0.25))
    assert lines == [
        ("energy, period 1, tier 1", Decimal("260.0"), Decimal("26.00")),
        ("energy, period 1, tier 2", Decimal("374.0"), Decimal("74.80")),
        ("energy, period 2, tier 1", Decimal("40.0"), Decimal("12.00")),
        ("energy, period 2, tier 2", Decimal("70.0"), Decimal("35.00")),
    ]
    assert total == Decimal("147.80")


def test_net_metering_shares_each_tier_among_periods() -> None:
    # SAM's net metering: every period takes its share of each tier, 634/744 and 110/744:
    # tier 1: 255.645161 and 44.354839 kWh; tier 2: 378.354839 and 65.645161 kWh
    total, lines = run(TIERED_TOU, flat(0.25))
    assert lines == [
        ("energy, period 1, tier 1", Decimal("255.645161"), Decimal("25.56")),
        ("energy, period 1, tier 2", Decimal("378.354839"), Decimal("75.67")),
        ("energy, period 2, tier 1", Decimal("44.354839"), Decimal("13.31")),
        ("energy, period 2, tier 2", Decimal("65.645161"), Decimal("32.82")),
    ]
    assert total == Decimal("147.36")  # the lines, rounded once each, add up to the total


def test_fixed_charge_per_day_and_minimum_per_day_count_365_12_days_a_month() -> None:
    # NREL's reading: $0.40 a day is 0.40 x 365/12 = $12.1667 a month; a $2 a day minimum is
    # $60.83 a month: 29.76 kWh x $0.12 = $3.5712 + $12.1667 leaves $45.0955 to the minimum,
    # billed as what the rounded lines leave to $60.83: 60.83 - 12.17 - 3.57
    total, lines = run(
        {
            "energyratestructure": [[{"rate": 0.12}]],
            "energyweekdayschedule": ALL_OFF,
            "energyweekendschedule": ALL_OFF,
            "fixedchargefirstmeter": 0.40,
            "fixedchargeunits": "$/day",
            "mincharge": 2.0,
            "minchargeunits": "$/day",
        },
        flat(0.01),
    )
    assert lines == [
        ("fixed charge", Decimal("30.416667"), Decimal("12.17")),
        ("energy", Decimal("29.76"), Decimal("3.57")),
        ("minimum charge adjustment", Decimal("1.0"), Decimal("45.09")),
    ]
    assert total == Decimal("60.83")


def test_many_customers_at_once_match_one_at_a_time_and_threads_change_nothing() -> None:
    rng = np.random.default_rng(3)
    imp = rng.uniform(0.0, 0.6, (5, len(IDX)))
    exp = np.where(rng.random((5, len(IDX))) < 0.3, rng.uniform(0, 1, (5, len(IDX))), 0.0)
    imp = np.where(exp > 0, 0.0, imp)
    tariff = Tariff.model_validate({**TIERED_TOU, "fixedchargefirstmeter": 9.0})
    names = [f"h{i}" for i in range(5)]
    together, carry = bill_month(
        tariff, IDX, imp, exp, timezone=TZ, customers=names, meters=names, threads=3
    )
    for i, name in enumerate(names):
        alone = bill(
            tariff,
            pd.Series(imp[i], index=IDX),
            pd.Series(exp[i], index=IDX),
            timezone=TZ,
            customer=name,
            meter=name,
            start=START,
            end=END,
        )
        assert alone == together[i]
    assert carry.month == 10 and carry.surplus_kwh.shape == (5, 2)


def test_a_carry_from_the_wrong_month_is_refused() -> None:
    tariff = Tariff.model_validate(TIERED_TOU)
    one = np.full((1, len(IDX)), 0.25)
    _, carry = bill_month(tariff, IDX, one, one * 0, timezone=TZ, customers=["h01"], meters=["m"])
    with pytest.raises(ValueError, match="need the carry of month 9"):
        bill_month(
            tariff, IDX, one, one * 0, timezone=TZ, customers=["h01"], meters=["m"], carry_in=carry
        )


def test_the_carry_goes_through_json_with_an_issued_bill_and_back() -> None:
    import json

    imp, exp = _pv_day()
    tariff = Tariff.model_validate({**TIERED_TOU, "nm_yearend_sell_rate": 0.02})
    rows = [imp.to_numpy(), imp.to_numpy() * 0.1]
    _, carry = bill_month(
        tariff,
        IDX,
        np.array(rows),
        np.array([exp.to_numpy(), exp.to_numpy()]),
        timezone=TZ,
        customers=["a", "b"],
        meters=["ma", "mb"],
    )
    stored = [json.loads(json.dumps(carry.row(i))) for i in range(2)]
    # b used 62 kWh (51 off-peak, 11 at the peak) and exported 248 off-peak: 197 kWh carried
    # in period 1, the 11 peak kWh billed ($3.30, which counts for an annual minimum), and a net
    # excess of 186 kWh for the true-up
    assert stored[1] == {
        "month": 10,
        "surplus_kwh": [pytest.approx(197.0), 0.0],
        "excess_kwh": pytest.approx(186.0),
        "credit": 0.0,
        "year_bill": pytest.approx(3.30),
    }
    back = Carry.from_rows(stored, month=10)
    assert back.surplus_kwh.tolist() == carry.surplus_kwh.tolist()
    with pytest.raises(ValueError, match="carry row 0 is of month 10, not 11"):
        Carry.from_rows(stored, month=11)


def test_periods_of_a_month_with_different_tier_limits_are_refused() -> None:
    tariff = {
        **TIERED_TOU,
        "energyratestructure": [
            [{"max": 300, "rate": 0.1}, {"rate": 0.2}],
            [{"max": 100, "rate": 0.3}, {"rate": 0.5}],
        ],
    }
    with pytest.raises(ValueError, match=r"period 2 has tier limits \[100.0, inf\]"):
        run(tariff, flat(0.25))


def test_a_missing_export_reading_counts_as_none_and_the_callers_arrays_stay() -> None:
    tariff = Tariff.model_validate({**TIERED_TOU, "dgrules": "Net Billing Instantaneous"})
    imp = np.full((1, len(IDX)), 0.25)
    exp = np.zeros((1, len(IDX)))
    exp[0, 5] = np.nan
    (b,), _ = bill_month(tariff, IDX, imp, exp, timezone=TZ, customers=["a"], meters=["m"])
    assert b.total == Decimal("147.80") and np.isnan(exp[0, 5])
    imp[0, 7] = np.nan
    with pytest.raises(ValueError, match="no validated import reading for 2026-10-01T05:45"):
        bill_month(tariff, IDX, imp, exp, timezone=TZ, customers=["a"], meters=["m"])
