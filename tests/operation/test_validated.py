"""VEE runs and manual edits as versions on top of untouched raw readings (SQLite, PostgreSQL)."""

from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa

from openmeg.core.audit import AuditLog
from openmeg.core.store import Store
from openmeg.operation.mdms.store import MeterReadings
from openmeg.operation.mdms.validated import EditError, ValidatedReadings, vee_flags
from openmeg.operation.mdms.vee import VeeConfig
from tests.keys import audit_key

CFG = VeeConfig(timezone="UTC", high_kwh=5.0)
DAY = datetime(2026, 10, 7, tzinfo=UTC)
NOW = datetime(2026, 10, 9, tzinfo=UTC)


def _load(store: Store) -> None:
    starts = [DAY + timedelta(minutes=15 * i) for i in range(96)]
    values = [0.5] * 96
    values[20] = -0.3  # negative: estimated between its neighbours
    frame = pd.DataFrame(
        {"meter": "m-h01", "channel": "import", "interval_start": starts, "value_kwh": values}
    )
    frame = frame.drop(index=[40, 41])  # a half-hour gap
    MeterReadings(store).ingest(frame, meters={"m-h01"}, source="test", received_at=NOW)


def test_vee_run_estimates_flags_and_is_idempotent(store: Store) -> None:
    _load(store)
    v = ValidatedReadings(store, "demo")
    report = v.run_vee("m-h01", "import", DAY, DAY + timedelta(days=1), CFG, now=NOW)
    # versions only for what changed: the three estimates, not a copy of every reading
    assert report.estimated == 3 and report.new_versions == 3
    assert sorted(set(report.flags.rule)) == ["gap", "negative"]
    latest = v.latest("m-h01", "import", DAY, DAY + timedelta(days=1))
    assert len(latest) == 96 and latest.version.value_counts().to_dict() == {0: 93, 1: 3}
    measured = latest[latest.version == 0]
    assert set(measured.quality) == {"good"} and set(measured.method) == {"measured"}
    est = latest[latest.quality == "estimated"]
    assert est.interval_start.dt.strftime("%H:%M").tolist() == ["05:00", "10:00", "10:15"]
    assert est.value_kwh.tolist() == pytest.approx([0.5, 0.5, 0.5])
    assert set(est.method) == {"interpolation"}
    again = v.run_vee("m-h01", "import", DAY, DAY + timedelta(days=1), CFG, now=NOW)
    assert again.new_versions == 0
    raw = MeterReadings(store).series("m-h01", "import", DAY, DAY + timedelta(days=1))
    assert raw.iloc[20] == -0.3 and len(raw) == 94  # raw readings stay as they came


def test_manual_edit_is_a_new_version_with_an_audit_trail(store: Store) -> None:
    _load(store)
    v, log = ValidatedReadings(store, "demo"), AuditLog(store, audit_key())
    v.run_vee("m-h01", "import", DAY, DAY + timedelta(days=1), CFG, now=NOW)
    at = DAY + timedelta(hours=10)
    assert (
        v.edit(
            "m-h01",
            "import",
            at,
            0.62,
            user="clerk-7",
            reason="site visit reading",
            audit=log,
            now=NOW,
        )
        == 2
    )
    row = v.latest("m-h01", "import", at, at + timedelta(minutes=15)).iloc[0]
    assert (row.version, row.value_kwh, row.quality, row.method, row.user) == (
        2,
        0.62,
        "edited",
        "manual",
        "clerk-7",
    )
    # a later VEE run leaves an edited interval alone
    assert (
        v.run_vee("m-h01", "import", DAY, DAY + timedelta(days=1), CFG, now=NOW).new_versions == 0
    )
    [audit] = store.events("demo", kind="meter_edit")
    assert audit["source"] == "clerk-7" and audit["code"] == "m-h01/import"
    assert audit["text"] == "2026-10-07T10:00:00+00:00: 0.5 -> 0.62 kWh (site visit reading)"
    with pytest.raises(EditError, match="user who makes it and the reason"):
        v.edit("m-h01", "import", at, 0.7, user="clerk-7", reason=" ", audit=log)
    with pytest.raises(EditError, match="cannot be an interval's energy"):
        v.edit("m-h01", "import", at, -1.0, user="clerk-7", reason="typo", audit=log)
    assert len(store.events("demo", kind="meter_edit")) == 1
    [record] = log.records()
    assert (record.actor, record.action, record.target) == (
        "clerk-7",
        "meter_edit",
        "m-h01/import/2026-10-07T10:00:00+00:00",
    )
    assert log.verify() == []


def test_stored_register_reads_check_the_intervals(store: Store) -> None:
    _load(store)
    raw = MeterReadings(store)
    # from 00:00 to 05:00 twenty intervals of 0.5 kWh: the register must advance 10 kWh
    assert (
        raw.add_registers(
            [("m-h01", "import", DAY, 100.0), ("m-h01", "import", DAY + timedelta(hours=5), 110.4)]
        )
        == 2
    )
    assert raw.add_registers([("m-h01", "import", DAY, 999.0)]) == 0  # a read stays as it came
    report = ValidatedReadings(store, "demo").run_vee(
        "m-h01", "import", DAY, DAY + timedelta(days=1), CFG, now=NOW
    )
    mismatch = report.flags[report.flags.rule == "register_mismatch"]
    assert len(mismatch) == 20
    assert mismatch.detail.iloc[0] == "intervals add up to 10 kWh, the register advanced 10.4 kWh"


def test_the_validated_series_overlays_the_newest_versions_on_the_raw(store: Store) -> None:
    _load(store)
    v, log = ValidatedReadings(store, "demo"), AuditLog(store, audit_key())
    end = DAY + timedelta(days=1)
    values, quality = v.arrays(["m-h01", "m-h02"], "import", DAY, end)  # before VEE: raw
    assert values.shape == quality.shape == (2, 96)
    assert quality[0].tolist().count(1) == 94 and quality[0, 40] == 0 and values[0, 20] == -0.3
    assert (quality[1] == 0).all() and np.isnan(values[1]).all()
    v.run_vee("m-h01", "import", DAY, end, CFG, now=NOW)
    v.edit(
        "m-h01", "import", DAY + timedelta(hours=1), 0.8, user="clerk-7", reason="visit", audit=log
    )
    values, quality = v.arrays(["m-h01"], "import", DAY, end)
    assert values[0, [3, 4, 20, 40, 41]].tolist() == [0.5, 0.8, 0.5, 0.5, 0.5]
    assert quality[0, [3, 4, 20, 40, 41]].tolist() == [1, 3, 2, 2, 2]
    assert values[0].sum() == pytest.approx(95 * 0.5 + 0.8)
    s = v.series("m-h01", "import", DAY, end)
    assert len(s) == 96 and s.iloc[4] == 0.8 and s.index[0] == pd.Timestamp(DAY)
    m = v.matrix(["m-h02", "m-h01"], "import", DAY + timedelta(hours=1), DAY + timedelta(hours=2))
    assert list(m.columns) == ["m-h02", "m-h01"] and m["m-h01"].tolist() == [0.8, 0.5, 0.5, 0.5]
    assert m["m-h02"].isna().all()
    # a late reading for an estimated interval: VEE makes it good again (version 2, raw value)
    late = pd.DataFrame(
        {
            "meter": ["m-h01"],
            "channel": ["import"],
            "interval_start": [DAY + timedelta(minutes=600)],
            "value_kwh": [0.45],
        }
    )
    MeterReadings(store).ingest(late, meters={"m-h01"}, source="late", received_at=NOW)
    assert v.run_vee("m-h01", "import", DAY, end, CFG, now=NOW).new_versions == 2  # 10:00, 10:15
    rows = v.latest("m-h01", "import", DAY + timedelta(hours=10), DAY + timedelta(minutes=630))
    assert rows[["version", "value_kwh", "quality", "method"]].values.tolist() == [
        [2, 0.45, "good", "measured"],
        [2, 0.475, "estimated", "interpolation"],
    ]


def test_flags_are_stored_as_runs_and_replaced_by_the_next_run(store: Store) -> None:
    _load(store)
    v = ValidatedReadings(store, "demo")
    end = DAY + timedelta(days=1)
    report = v.run_vee("m-h01", "import", DAY, end, CFG, now=NOW)
    with store.engine.connect() as conn:
        runs = conn.execute(
            sa.select(vee_flags.c.interval_start, vee_flags.c.intervals, vee_flags.c.rule)
        ).all()
    assert sorted((pd.Timestamp(t).strftime("%H:%M"), n, r) for t, n, r in runs) == [
        ("05:00", 1, "negative"),
        ("10:00", 2, "gap"),  # one row for the half-hour gap
    ]
    pd.testing.assert_frame_equal(v.flags("m-h01", "import", DAY, end), report.flags)
    v.run_vee("m-h01", "import", DAY, end, CFG, now=NOW)
    assert len(v.flags("m-h01", "import", DAY, end)) == 3  # replaced, not added to
