"""The energy revenue calculating system on the store: devices' own 15-minute meter readings in
the MDMS, market prices kept by the price synchronising unit, both arrangements (one calculator
per device, one central), hand-computed; and ``openmeg revenue``."""

import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from openmeg.core.messages import PriceChange
from openmeg.core.site import load_site
from openmeg.core.store import Store, sqlite_url
from openmeg.customer.price_book import PriceBook, PriceSourceError
from openmeg.customer.revenue_calc import (
    CentralRevenueCalculator,
    DeviceRevenueCalculator,
    per_device_table,
    revenue_devices,
    revenue_table,
)
from openmeg.operation.mdms.store import MeterReadings

T0 = datetime(2026, 6, 1, 10, 0, tzinfo=UTC)
DEVICES = ["pv-h01", "bess-h01"]


def _at(minutes: int) -> datetime:
    return T0 + timedelta(minutes=minutes)


def _fill(store: Store) -> tuple[MeterReadings, PriceBook]:
    book = PriceBook(store, "demo")
    book.record(
        [
            PriceChange(effective_from=_at(0), buy=0.10, sell=0.08),
            PriceChange(effective_from=_at(7), buy=0.40, sell=0.20),  # inside the first interval
            PriceChange(effective_from=_at(15), buy=0.12, sell=0.09),
            PriceChange(effective_from=_at(45), buy=-0.02, sell=-0.05),  # a sunny midday
        ],
        received_at=T0 - timedelta(hours=1),
    )
    rows = []
    values = {
        ("pv-h01", "export"): [1.5, 2.0, 2.5, 3.0],
        ("pv-h01", "import"): [0.0, 0.0, 0.0, 0.0],
        ("bess-h01", "export"): [0.0, 1.0, 0.0, 0.0],
        ("bess-h01", "import"): [1.25, 0.0, 0.0, 0.5],
    }
    for (device, channel), kwh in values.items():
        rows += [(device, channel, _at(15 * i), v) for i, v in enumerate(kwh)]
    frame = pd.DataFrame(rows, columns=["meter", "channel", "interval_start", "value_kwh"])
    readings = MeterReadings(store)
    readings.ingest(frame, meters=set(DEVICES), source="test", received_at=_at(60))
    return readings, book


def test_revenue_per_interval_by_hand_in_both_arrangements(store: Store) -> None:
    readings, book = _fill(store)
    central = CentralRevenueCalculator(DEVICES, readings, book).table(T0, _at(60))
    # 10:00-10:15: 7 min at 0.10/0.08 then 8 min at 0.40/0.20
    assert central.buy == pytest.approx([3.9 / 15, 0.12, 0.12, -0.02])  # 0.26
    assert central.sell == pytest.approx([2.16 / 15, 0.09, 0.09, -0.05])  # 0.144
    by_hand = np.array(
        [
            [1.5 * 0.144, 2.0 * 0.09, 2.5 * 0.09, 3.0 * -0.05],
            [-1.25 * 0.26, 1.0 * 0.09, 0.0, -0.5 * -0.02],
        ]
    )
    assert central.revenue == pytest.approx(by_hand, abs=1e-12)
    assert central.totals()["revenue"].tolist() == pytest.approx([0.471, -0.225], abs=1e-12)

    mine = DeviceRevenueCalculator("bess-h01", readings, book).table(T0, _at(60))
    assert mine.revenue[0] == pytest.approx(by_hand[1], abs=1e-12)
    each = per_device_table(DEVICES, readings, book, T0, _at(60))
    assert each.revenue == pytest.approx(central.revenue, abs=1e-15)

    hourly = central.by_period("hour", "America/New_York")
    assert hourly.shape == (1, 2) and hourly.iloc[0].tolist() == pytest.approx([0.471, -0.225])


def test_intervals_without_price_or_reading_count_nothing(store: Store) -> None:
    readings, book = _fill(store)
    table = CentralRevenueCalculator(DEVICES, readings, book).table(_at(-30), _at(75))
    assert table.unpriced_intervals == 2  # 09:30 and 09:45: no price known yet
    assert table.revenue[:, :2] == pytest.approx(np.zeros((2, 2)))
    assert table.revenue[:, -1] == pytest.approx([0.0, 0.0])  # 11:00: no reading
    assert table.totals()["revenue"].tolist() == pytest.approx([0.471, -0.225], abs=1e-12)
    with pytest.raises(ValueError, match="period must be one of"):
        table.by_period("week", "UTC")


def test_revenue_table_of_a_site_in_either_arrangement(store: Store) -> None:
    readings, book = _fill(store)
    site = load_site("demo")
    central = CentralRevenueCalculator(DEVICES, readings, book).table(T0, _at(60))
    for arrangement in ("central", "per-device"):
        table = revenue_table(site, store, DEVICES, T0, _at(60), arrangement=arrangement)
        assert table.devices == DEVICES
        assert table.revenue == pytest.approx(central.revenue, abs=1e-15)
    every = revenue_table(site, store, [], T0, _at(60))
    assert every.devices == revenue_devices(site)
    with pytest.raises(ValueError, match="arrangement 'both': one of central, per-device"):
        revenue_table(site, store, DEVICES, T0, _at(60), arrangement="both")


def test_price_book_keeps_a_price_once_it_has_begun(store: Store) -> None:
    book = PriceBook(store, "demo")
    book.record([PriceChange(effective_from=_at(0), buy=0.1, sell=0.05)], received_at=_at(-5))
    book.record([PriceChange(effective_from=_at(15), buy=0.2, sell=0.15)], received_at=_at(-5))
    # a revision published at 10:05: the price of 10:00 has begun and stays; 10:15 is revised
    revised = [
        PriceChange(effective_from=_at(0), buy=0.9, sell=0.9),
        PriceChange(effective_from=_at(15), buy=0.3, sell=0.25),
    ]
    assert book.record(revised, received_at=_at(5)) == 1
    assert book.price_at(_at(14)) == (0.1, 0.05)
    assert book.price_at(_at(15)) == (0.3, 0.25)
    assert book.price_at(_at(-1)) is None
    # a publication with a non-number (built past the message's own check) or a price beyond
    # the book's bound is refused whole
    for buy, says in ((float("nan"), "buy price .* is nan"), (9.99, "beyond the site's bound")):
        bad = [
            PriceChange(effective_from=_at(30), buy=0.3, sell=0.2),
            PriceChange.model_construct(effective_from=_at(45), buy=buy, sell=0.2),
        ]
        with pytest.raises(PriceSourceError, match=says):
            book.record(bad, received_at=_at(5))
    assert book.last_change() == _at(15)


def _openmeg(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "openmeg", *args], capture_output=True, text=True, timeout=120
    )


def test_revenue_command(tmp_path: Path) -> None:
    url = sqlite_url(tmp_path / "meg.db")
    db = Store(url)
    db.create_schema()
    _fill(db)
    db.close()
    out_csv = tmp_path / "revenue.csv"
    args = ["--from", "2026-06-01T10:00Z", "--to", "2026-06-01T11:00Z", "--store", url]
    for arrangement in ("central", "per-device"):
        done = _openmeg(
            "revenue",
            *args,
            "--device",
            "pv-h01",
            "--device",
            "bess-h01",
            "--arrangement",
            arrangement,
            "--by",
            "interval",
            "--csv",
            str(out_csv),
        )
        assert done.returncode == 0, done.stderr
        lines = done.stdout.splitlines()
        assert lines[0] == "pv-h01: out 9.000 kWh, in 0.000 kWh, revenue 0.47"
        assert lines[1] == "bess-h01: out 1.000 kWh, in 1.750 kWh, revenue -0.23"
        table = pd.read_csv(out_csv, index_col=0)
        assert table["bess-h01"].tolist() == pytest.approx([-0.325, 0.09, 0.0, 0.01])
    bad = _openmeg("revenue", *args, "--device", "load-h01")
    assert bad.returncode == 2 and "no revenue meter on load-h01" in bad.stderr
    bad = _openmeg("revenue", *args, "--by", "fortnight")
    assert bad.returncode == 2 and "--by must be one of" in bad.stderr
