"""The building's basic charge for October 2026 from validated meter data: an owner with a week
of missing readings (estimated and flagged), an owner who moved in on the 16th."""

from datetime import date, datetime
from pathlib import Path

import pandas as pd
import pytest

from openmeg.core.site import Site, load_site
from openmeg.core.store import Store
from openmeg.operation.mdms.store import MeterReadings
from openmeg.operation.mdms.validated import ValidatedReadings
from openmeg.operation.mdms.vee import VeeConfig
from openmeg.provider.basic_charge import OwnerMonth, allocate
from openmeg.provider.basic_charge_run import basic_charge_month, issue_basic_charge

TZ = "Europe/Rome"
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


def _validated(store: Store) -> Site:
    """The demo site with o4 in since the 16th, and October's readings validated."""
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
    return site


def test_basic_charge_from_validated_readings(store: Store) -> None:
    site = _validated(store)
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


def test_each_owner_gets_a_statement_file(store: Store, tmp_path: Path) -> None:
    site = _validated(store)
    issue = issue_basic_charge(site, store, "bldg1", "2026-10", tmp_path / "out")
    assert [s.owner for s in issue.statements] == ["o1", "o2", "o3", "o4"]
    assert issue.total_cents == 138000 and issue.currency == "USD"
    written = sorted(p.name for p in (tmp_path / "out").iterdir())
    assert written == [f"basic-charge-{o}-2026-10.html" for o in ("o1", "o2", "o3", "o4")]
    o3 = (tmp_path / "out" / "basic-charge-o3-2026-10.html").read_text()
    assert "Includes 672 estimated quarter hours" in o3 and "USD 1,380.00" in o3


def test_missing_validation_is_reported(store: Store) -> None:
    with pytest.raises(ValueError, match="run openmeg vee run first"):
        basic_charge_month(load_site("demo"), store, "bldg1", "2026-10")
    with pytest.raises(ValueError, match="no building 'b9'; buildings: bldg1"):
        basic_charge_month(load_site("demo"), store, "b9", "2026-10")
