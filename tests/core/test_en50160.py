"""EN 50160's two rules on 10-minute means, with numbers counted by hand."""

from __future__ import annotations

import numpy as np
import pandas as pd

from openmeg.core.en50160 import OUTSIDE, TOLERATED, WITHIN, assess, band, violations


def test_band_edges() -> None:
    v = np.array([1.0, 0.9, 0.899, 1.1, 1.101, 0.85, 0.849, np.nan])
    assert band(v).tolist() == [
        WITHIN,
        WITHIN,
        TOLERATED,
        WITHIN,
        OUTSIDE,
        TOLERATED,
        OUTSIDE,
        WITHIN,
    ]


def test_a_week_with_too_many_low_means_is_a_violation() -> None:
    # one week (Monday 2026-06-01 .. Sunday) of 1-minute values: 1008 ten-minute means
    index = pd.date_range("2026-06-01", periods=7 * 24 * 60, freq="1min", tz="Europe/Rome")
    ok = np.full(len(index), 1.0)
    low = ok.copy()
    # 60 ten-minute means at 0.89 pu: 948/1008 = 94.05 % within ±10 % (< 95 %)
    low[:600] = 0.89
    # two ten-minute means at 0.84 pu: below Un - 15 %
    spike = ok.copy()
    spike[1000:1020] = 0.84
    weeks = assess(index, np.column_stack([ok, low, spike]), ["Bus A", "Bus B", "Bus C"])
    assert [(w.bus, w.means) for w in weeks] == [("Bus A", 1008), ("Bus B", 1008), ("Bus C", 1008)]
    a, b, c = weeks
    assert a.compliant and a.why == ""
    assert b.share_within == 948 / 1008 and not b.compliant and b.outside == 0
    assert b.min_pu == 0.89 and b.why == "94.0% of 10-minute means within ±10 % (95 % asked)"
    assert c.outside == 2 and c.share_within == 1006 / 1008 and not c.compliant
    assert c.why == "2 10-minute means outside +10/−15 %"
    assert [w.bus for w in violations(weeks)] == ["Bus B", "Bus C"]
    assert a.week == pd.Timestamp("2026-06-01", tz="Europe/Rome")


def test_weeks_split_on_monday_and_empty_buses_are_skipped() -> None:
    index = pd.date_range("2026-06-06", periods=3 * 24 * 6, freq="10min", tz="UTC")  # Sat..Mon
    v = np.column_stack([np.full(len(index), 1.02), np.full(len(index), np.nan)])
    weeks = assess(index, v, ["Bus A", "Bus B"])
    assert [(w.week.day, w.means) for w in weeks] == [(1, 2 * 144), (8, 144)]
