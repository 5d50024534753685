"""The basic charge of an aggregate building shared among its owners, hand-computed."""

from datetime import UTC, datetime

import pandas as pd
import pytest

from openmeg.provider.basic_charge import OwnerMonth, allocate, largest_remainder, peak_demand_kw


def owners(*peaks: float, days: tuple[int, ...] = (31, 31, 31, 31)) -> list[OwnerMonth]:
    shares = (0.20, 0.25, 0.30, 0.25)
    return [
        OwnerMonth(owner=f"o{i + 1}", share=s, days_present=d, peak_kw=p)
        for i, (s, d, p) in enumerate(zip(shares, days, peaks, strict=True))
    ]


def test_share_and_peak_parts_as_computed_by_hand() -> None:
    # $1,380.00; 120 kW contracted; peaks 10, 12, 30 and 20 kW use 72/120 = 60 % of it.
    # half by shares: 13800, 17250, 20700, 17250; the other half, 69000, is 41400 by peaks
    # (5750, 6900, 17250, 11500) and 27600 by shares again (5520, 6900, 8280, 6900).
    got = allocate(owners(10, 12, 30, 20), charge_cents=138000, contracted_kw=120, days_in_month=31)
    assert [a.cents for a in got] == [25070, 31050, 46230, 35650]
    assert sum(a.cents for a in got) == 138000
    assert [a.peak_part_cents for a in got] == pytest.approx([5750, 6900, 17250, 11500])


def test_peaks_beyond_the_contract_share_all_of_the_use_part() -> None:
    got = allocate(
        owners(40, 40, 40, 40),
        charge_cents=100000,
        contracted_kw=120,
        days_in_month=30,
        share_weight=0.0,
    )
    assert [a.cents for a in got] == [25000] * 4


def test_rounding_adds_up_to_the_cent() -> None:
    three = [
        OwnerMonth(owner=f"o{i}", share=1 / 3, days_present=30, peak_kw=5.0) for i in (1, 2, 3)
    ]
    got = allocate(three, charge_cents=10000, contracted_kw=50, days_in_month=30)
    assert [a.cents for a in got] == [3334, 3333, 3333]
    assert largest_remainder(101, [1, 1, 1, 1], ["a", "b", "c", "d"]) == [26, 25, 25, 25]  # type: ignore[list-item]


def test_an_owner_who_joins_mid_month_is_pro_rated_by_days() -> None:
    # shares only; o4 moved in on day 16 of a 30-day month: 0.25 x 15/30 = 0.125 of presence;
    # presences 0.2, 0.25, 0.3, 0.125 of 0.875 in all share $875.00
    got = allocate(
        owners(1, 1, 1, 1, days=(30, 30, 30, 15)),
        charge_cents=87500,
        contracted_kw=100,
        days_in_month=30,
        share_weight=1.0,
    )
    assert [a.cents for a in got] == [20000, 25000, 30000, 12500]


def test_peak_demand_is_the_largest_full_hourly_average() -> None:
    start = datetime(2026, 10, 1, 4, tzinfo=UTC)  # midnight in New York
    idx = pd.date_range(start, periods=96, freq="15min")
    kwh = pd.Series(0.5, index=idx)  # 2 kW all day
    kwh.iloc[40:44] = [1.0, 2.0, 3.0, 2.0]  # 10:00 to 11:00 local: 8 kWh in the hour: 8 kW
    kwh.iloc[60] = 9.0  # a quarter hour alone: 9.0 + 3 x 0.5 = 10.5 kWh in 15:00-16:00
    peak, at = peak_demand_kw(kwh, "America/New_York")
    assert peak == pytest.approx(10.5) and at == pd.Timestamp(
        "2026-10-01 15:00", tz="America/New_York"
    )
    partial = kwh.drop(idx[61])  # an hour with a missing quarter does not count
    assert peak_demand_kw(partial, "America/New_York")[0] == pytest.approx(8.0)


def test_the_hour_repeated_when_the_clocks_go_back_is_two_hours() -> None:
    # Rome, 25 October 2026: 03:00 CEST becomes 02:00 CET, so 02:00-03:00 comes twice
    at = pd.date_range("2026-10-24T22:00Z", periods=20, freq="15min")  # 00:00 CEST..04:00 CET
    kwh = pd.Series(1.0, index=at)
    kwh.iloc[12:16] = 3.0  # the second 02:00-03:00 (CET): 12 kWh in its hour
    kw, began = peak_demand_kw(kwh, "Europe/Rome")
    assert kw == 12.0 and began == pd.Timestamp("2026-10-25T02:00+01:00")
    kwh.iloc[10:12] = 4.0  # the first 02:00-03:00 (CEST): 1 + 1 + 4 + 4, not 12
    assert peak_demand_kw(kwh, "Europe/Rome") == (12.0, began)
    # half an hour off UTC: 06:30-07:30 IST spans two local hours of 1+1+3+3 kWh
    kwh.iloc[10:12] = 1.0
    assert peak_demand_kw(kwh, "Asia/Kolkata") == (8.0, pd.Timestamp("2026-10-25T06:00+05:30"))


def test_bad_parameters_are_refused() -> None:
    with pytest.raises(ValueError, match="between 0 and 1"):
        allocate(
            owners(1, 1, 1, 1), charge_cents=1, contracted_kw=1, days_in_month=30, share_weight=1.5
        )
    with pytest.raises(ValueError, match="needs owners"):
        allocate([], charge_cents=1, contracted_kw=1, days_in_month=30)
