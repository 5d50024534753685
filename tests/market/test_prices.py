"""Price series: the synthetic generator's shape, and price files checked before use."""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from openmeg.market.prices import PriceFileError, load_price_csv, synthetic_prices


def test_synthetic_prices_have_daily_and_seasonal_shape() -> None:
    july = synthetic_prices(pd.Timestamp("2026-07-01", tz="UTC"), 14, seed=1)
    january = synthetic_prices(pd.Timestamp("2026-01-05", tz="UTC"), 14, seed=1)
    assert len(july) == 14 * 96
    hour = july.interval_start.dt.hour
    assert july.buy[hour == 19].mean() > july.buy[hour == 13].mean() + 0.1  # evening over midday
    assert (july.buy < 0).any()  # sunny middays can go negative
    assert january.buy[january.interval_start.dt.hour == 13].mean() > 0.1
    assert np.allclose(july.buy - july.sell, 0.03)
    again = synthetic_prices(pd.Timestamp("2026-07-01", tz="UTC"), 14, seed=1)
    pd.testing.assert_frame_equal(july, again)  # seeded: the same series again


def test_a_clean_price_file_loads(tmp_path: Path) -> None:
    p = tmp_path / "prices.csv"
    p.write_text(
        "interval_start,buy,sell\n2026-10-01T00:15:00Z,0.2,0.1\n2026-10-01T00:00:00Z,0.1,0.05\n"
    )
    frame = load_price_csv(p)
    assert frame.buy.tolist() == [0.1, 0.2]  # sorted by time


def test_gaps_duplicates_and_non_numbers_are_refused(tmp_path: Path) -> None:
    p = tmp_path / "bad.csv"
    p.write_text(
        "interval_start,buy,sell\n2026-10-01T00:00:00Z,0.1,0.05\n"
        "2026-10-01T00:00:00Z,0.1,0.05\n2026-10-01T00:30:00Z,x,0.05\n"
    )
    with pytest.raises(PriceFileError) as info:
        load_price_csv(p)
    text = str(info.value)
    assert "row 3: buy 'x' is not a number" in text
    assert "interval 2026-10-01T00:00:00+00:00 appears more than once" in text
    assert "no price for the interval starting 2026-10-01T00:15:00+00:00 (a gap)" in text
    with pytest.raises(PriceFileError, match="columns missing: sell"):
        (tmp_path / "c.csv").write_text("interval_start,buy\n")
        load_price_csv(tmp_path / "c.csv")
