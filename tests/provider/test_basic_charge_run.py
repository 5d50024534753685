"""The building's basic charge for October 2026 from validated meter data: an owner with a week
of missing readings (estimated and flagged), an owner who moved in on the 16th."""

from datetime import date, datetime

import pandas as pd
import pytest

from openmeg.core.site import load_site
from openmeg.core.store import Store
from openmeg.operation.mdms.store import MeterReadings
from openmeg.operation.mdms.validated import ValidatedReadings
from openmeg.operation.mdms.vee import VeeConfig
from openmeg.provider.basic_charge import OwnerMonth, allocate
from openmeg.provider.basic_charge_run import basic_charge_month

TZ = "America/New_York"
PEAKS = {
    "o1": ("2026-10-05 18:00", 10.0),
    "o2": ("2026-10-06 19:00", 12.0),
    "o3": ("2026-10-20 18:00", 30.0),
    "o4": ("2026-10-25 12:00", 20.0),
}


def _readings(owner: str, start: str) -> pd.DataFrame:
    idx = pd.date_range(
        pd.Timestamp(start, tz=TZ).tz_convert("UTC"),
        pd.Timestamp("2026-11-01", tz=TZ).tz_convert("UTC"),
        freq="15min",
        inclusive="left",
    )
    kwh = pd.Series(0.25, index=idx)  # 1 kW
    at, peak_kw = PEAKS[owner]
    hour = pd.Timestamp(at, tz=TZ).tz_convert("UTC")
    kwh[(kwh.index >= hour) & (kwh.index < hour + pd.Timedelta(hours=1))] = peak_kw / 4
    if owner == "o3":  # a week without readings
        gone = pd.Timestamp("2026-10-08", tz=TZ), pd.Timestamp("2026-10-15", tz=TZ)
        kwh = kwh[(kwh.index < gone[0]) | (kwh.index >= gone[1])]
    return pd.DataFrame(
        {
            "meter": f"m-{owner}",
            "channel": "import",
            "interval_start": kwh.index,
            "value_kwh": kwh.to_numpy(),
        }
    )


def test_basic_charge_from_validated_readings(store: Store) -> None:
    site = load_site("demo")
    customers = tuple(
        c.model_copy(update={"since": date(2026, 10, 16)}) if c.id == "o4" else c
        for c in site.customers
    )
    site = site.model_copy(update={"customers": customers})
    readings = MeterReadings(store)
    meters = {m.id for m in site.meters}
    for owner, start in (
        ("o1", "2026-09-01"),
        ("o2", "2026-09-01"),
        ("o3", "2026-09-01"),
        ("o4", "2026-10-16"),
    ):
        readings.ingest(
            _readings(owner, start), meters=meters, source="test", received_at=datetime(2026, 11, 2)
        )
    v = ValidatedReadings(store, "demo")
    cfg = VeeConfig(timezone=TZ)
    for owner, first in (
        ("o1", "2026-10-01"),
        ("o2", "2026-10-01"),
        ("o3", "2026-10-01"),
        ("o4", "2026-10-16"),
    ):
        v.run_vee(
            f"m-{owner}",
            "import",
            pd.Timestamp(first, tz=TZ).to_pydatetime(),
            pd.Timestamp("2026-11-01", tz=TZ).to_pydatetime(),
            cfg,
        )
    statements = basic_charge_month(site, store, "bldg1", "2026-10")
    assert [s.owner for s in statements] == ["o1", "o2", "o3", "o4"]
    assert [s.peak_kw for s in statements] == pytest.approx([10.0, 12.0, 30.0, 20.0])
    assert statements[2].peak_at == pd.Timestamp("2026-10-20 18:00", tz=TZ)
    assert [s.days_present for s in statements] == [31, 31, 31, 16]
    assert [s.estimated_intervals for s in statements] == [0, 0, 7 * 96, 0]
    expected = allocate(
        [
            OwnerMonth(owner="o1", share=0.20, days_present=31, peak_kw=10),
            OwnerMonth(owner="o2", share=0.25, days_present=31, peak_kw=12),
            OwnerMonth(owner="o3", share=0.30, days_present=31, peak_kw=30),
            OwnerMonth(owner="o4", share=0.25, days_present=16, peak_kw=20),
        ],
        charge_cents=138000,
        contracted_kw=120,
        days_in_month=31,
    )
    assert [s.cents for s in statements] == [a.cents for a in expected]
    assert sum(s.cents for s in statements) == 138000


def test_missing_validation_is_reported(store: Store) -> None:
    with pytest.raises(ValueError, match="run openmeg vee run first"):
        basic_charge_month(load_site("demo"), store, "bldg1", "2026-10")
    with pytest.raises(ValueError, match="no building 'b9'; buildings: bldg1"):
        basic_charge_month(load_site("demo"), store, "b9", "2026-10")
