"""VEE rules and both estimation methods on small hand-made data, daylight-saving days too."""

import numpy as np
import pandas as pd
import pytest

from openmeg.operation.mdms.estimate import estimate, interpolate, like_day_profile
from openmeg.operation.mdms.vee import VeeConfig, expected_index, validate

CFG = VeeConfig(timezone="America/New_York", high_kwh=10.0, low_kwh=0.0)
DAY = pd.Timestamp("2026-06-03 00:00", tz="America/New_York")  # a Wednesday


def day_series(start: pd.Timestamp, value: float = 0.25, days: int = 1) -> pd.Series:
    idx = expected_index(start, start + pd.DateOffset(days=days), CFG)
    return pd.Series(value, index=idx, dtype=float)


def rules(flags: pd.DataFrame) -> list[tuple[str, str]]:
    return [
        (t.tz_convert("America/New_York").strftime("%H:%M"), r)
        for t, r in zip(flags.interval_start, flags.rule, strict=True)
    ]


def test_a_clean_day_passes() -> None:
    s = day_series(DAY)
    assert len(s) == 96
    assert validate(s, start=DAY, end=DAY + pd.DateOffset(days=1), cfg=CFG).empty


def test_gaps_negative_limits_and_spikes() -> None:
    s = day_series(DAY)
    s = s.drop(s.index[[4, 5, 40]])  # 01:00, 01:15 and 10:00 missing
    s.iloc[10] = -0.2  # 03:00: two rows fewer before it
    s.iloc[50] = 12.0  # 13:15: above the high limit, and a spike against 0.25
    flags = validate(s, start=DAY, end=DAY + pd.DateOffset(days=1), cfg=CFG)
    assert rules(flags) == [
        ("01:00", "gap"),
        ("01:15", "gap"),
        ("03:00", "low"),
        ("03:00", "negative"),
        ("10:00", "gap"),
        ("13:15", "high"),
        ("13:15", "spike"),
    ]
    spike = flags[flags.rule == "spike"].detail.iloc[0]
    assert spike == "12 kWh against a third-highest of 0.25 kWh"


def test_three_equal_peaks_are_no_spike() -> None:
    s = day_series(DAY, 0.2)
    s.iloc[[30, 31, 32]] = 2.0
    assert validate(s, start=DAY, end=DAY + pd.DateOffset(days=1), cfg=CFG).empty


def test_zero_run_on_an_active_meter() -> None:
    s = day_series(DAY, 0.0, days=2)
    s.iloc[96:] = 0.3
    flags = validate(s, start=DAY, end=DAY + pd.DateOffset(days=2), cfg=CFG)
    assert list(flags.rule) == ["zero_on_active"] * 96
    assert flags.detail.iloc[0] == "96 zero intervals in a row"
    s.iloc[95] = 0.1  # a run of 95 is not yet suspect
    assert validate(s, start=DAY, end=DAY + pd.DateOffset(days=2), cfg=CFG).empty
    s.iloc[95] = 0.0
    assert validate(s, start=DAY, end=DAY + pd.DateOffset(days=2), cfg=CFG, active=False).empty


def test_meter_clock_outside_the_tolerance() -> None:
    s = day_series(DAY)
    clock = pd.Series(s.index + CFG.step, index=s.index)
    clock.iloc[8] += pd.Timedelta(seconds=90)
    clock.iloc[9] += pd.Timedelta(seconds=59)
    flags = validate(s, start=DAY, end=DAY + pd.DateOffset(days=1), cfg=CFG, meter_clock=clock)
    assert rules(flags) == [("02:00", "time_tolerance")]
    assert flags.detail.iloc[0] == "meter clock off by +90 s"


def test_register_advance_against_the_interval_sum() -> None:
    s = day_series(DAY)  # 24 intervals of 0.25 kWh in six hours: 6 kWh
    t0, t1 = s.index[0], s.index[24]
    ok = pd.Series([100.0, 106.0], index=[t0, t1])
    assert validate(s, start=DAY, end=DAY + pd.DateOffset(days=1), cfg=CFG, registers=ok).empty
    off = pd.Series([100.0, 106.5], index=[t0, t1])
    flags = validate(s, start=DAY, end=DAY + pd.DateOffset(days=1), cfg=CFG, registers=off)
    assert list(flags.rule) == ["register_mismatch"] * 24
    assert flags.detail.iloc[0] == "intervals add up to 6 kWh, the register advanced 6.5 kWh"


@pytest.mark.parametrize(("day", "intervals"), [("2026-03-08", 92), ("2026-11-01", 100)])
def test_daylight_saving_days_have_their_own_length(day: str, intervals: int) -> None:
    start = pd.Timestamp(day, tz="America/New_York")
    s = day_series(start)
    assert len(s) == intervals
    s.iloc[-1] = 3.0  # the last quarter hour of the local day: a spike of that day
    flags = validate(s, start=start, end=start + pd.DateOffset(days=1), cfg=CFG)
    assert rules(flags) == [("23:45", "spike")]


def test_short_gaps_are_interpolated_linearly() -> None:
    s = day_series(DAY)
    s.iloc[10], s.iloc[14] = 1.0, 2.0
    gap = s.index[11:14]
    est = interpolate(s.drop(gap), gap, CFG)
    assert est.tolist() == [1.25, 1.5, 1.75]


def test_long_gaps_take_the_like_day_profile_scaled_to_the_registers() -> None:
    history = pd.concat([day_series(DAY - pd.Timedelta(weeks=w), 0.2 + 0.1 * w) for w in (1, 2)])
    s = day_series(DAY, 0.5)
    gap = s.index[40:48]  # 10:00 to 12:00 local: two hours
    s = s.drop(gap)
    # the like days gave 0.3 and 0.4 kWh: the profile is 0.35 per interval, 2.8 kWh in all
    profile = like_day_profile(history, gap, CFG)
    assert profile.tolist() == pytest.approx([0.35] * 8)
    values, methods = estimate(s, gap, CFG, history=history)
    assert values.tolist() == pytest.approx([0.35] * 8) and set(methods) == {"like_day"}
    # the registers say the day used 47.4 kWh: 88 known intervals of 0.5 make 44, so the gap 3.4
    regs = pd.Series([1000.0, 1047.4], index=[s.index[0], s.index[-1] + CFG.step])
    values, methods = estimate(s, gap, CFG, history=history, registers=regs)
    assert values.sum() == pytest.approx(3.4) and values.tolist() == pytest.approx([0.425] * 8)
    assert set(methods) == {"like_day_scaled"}


def test_like_day_on_the_fall_back_day_covers_the_repeated_hour() -> None:
    day = pd.Timestamp("2026-11-01", tz="America/New_York")
    history = day_series(day - pd.Timedelta(weeks=1), 0.3)
    history[history.index.tz_convert("America/New_York").hour == 1] = 0.6
    s = day_series(day, 0.3)
    local = s.index.tz_convert("America/New_York")
    gap = s.index[local.hour == 1]  # 01:00-02:00 happens twice: eight quarter hours
    assert len(gap) == 8
    values, methods = estimate(s.drop(gap), gap, CFG, history=history)
    assert values.tolist() == pytest.approx([0.6] * 8) and set(methods) == {"like_day"}


def test_no_history_means_no_guess() -> None:
    s = day_series(DAY)
    gap = s.index[40:60]
    with pytest.raises(ValueError, match="no like-day history"):
        estimate(
            s.drop(gap),
            gap,
            CFG,
            history=pd.Series([], dtype=float, index=pd.DatetimeIndex([], tz="UTC")),
        )
    assert np.isfinite(s).all()
