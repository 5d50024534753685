"""Issued bills, hand-computed on October 2026 (Europe/Rome: 31 days, 2980 quarter hours as the
clocks go back on the 25th, 22 weekdays, so 440 peak quarter hours 16-21 h): a late reading after
issue gives a revision with the exact difference, a correction a credit note, an issued bill never
changes, a run that changes nothing issues nothing, and the building's association is billed the
common part only."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa

from openmeg.core.audit import AuditLog
from openmeg.core.errors import StoreError
from openmeg.core.site import Site, load_site
from openmeg.core.store import Store
from openmeg.operation.mdms.store import MeterReadings
from openmeg.operation.mdms.validated import ValidatedReadings
from openmeg.operation.mdms.vee import VeeConfig
from openmeg.provider import billing_run
from openmeg.provider.bill_freeze import tariff_version
from openmeg.provider.billing_run import run_billing
from openmeg.provider.common_part import common_part
from openmeg.provider.issued_bills import IssuedBills

TZ = "Europe/Rome"
START, END = pd.Timestamp("2026-10-01", tz=TZ), pd.Timestamp("2026-11-01", tz=TZ)
IDX = pd.date_range(START.tz_convert("UTC"), END.tz_convert("UTC"), freq="15min", inclusive="left")
ISSUED = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)
LATER = datetime(2026, 11, 9, 9, 0, tzinfo=UTC)


def _at(local: str) -> pd.Timestamp:
    return pd.Timestamp(local, tz=TZ).tz_convert("UTC")


def _frame(meter: str, channel: str, kwh: pd.Series) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "meter": meter,
            "channel": channel,
            "interval_start": kwh.index,
            "value_kwh": kwh.to_numpy(),
        }
    )


def _ingest(store: Store, site: Site, frame: pd.DataFrame, at: datetime) -> None:
    MeterReadings(store).ingest(
        frame, meters={m.id for m in site.meters}, source="test", received_at=at
    )


def _vee(store: Store, site: Site, *channels: tuple[str, str], now: datetime) -> None:
    v = ValidatedReadings(store, site.site.id)
    for meter, channel in channels:
        v.run_vee(
            meter,
            channel,
            START.to_pydatetime(),
            END.to_pydatetime(),
            VeeConfig(timezone=TZ),
            active=channel == "import",
            now=now,
        )


def _rows(store: Store) -> list[tuple[object, ...]]:
    with store.engine.connect() as conn:
        return [tuple(r) for r in conn.execute(sa.text("SELECT * FROM issued_bills")).all()]


def test_a_late_reading_after_issue_gives_a_revision_with_the_exact_difference(
    store: Store,
) -> None:
    site = load_site("demo")
    late = [_at("2026-10-14 17:00"), _at("2026-10-14 17:15")]  # a Wednesday, peak hours
    kwh = pd.Series(0.25, index=IDX)
    _ingest(store, site, _frame("m-h01", "import", kwh.drop(late)), ISSUED)
    _vee(store, site, ("m-h01", "import"), now=ISSUED)  # the gap interpolated: 0.25 kWh each
    (first,) = run_billing(site, store, "2026-10", customers={"h01"}, now=ISSUED)
    assert first.outcome == "issued" and first.issued is not None
    # off-peak 745 - 110 = 635 kWh x 0.11 = 69.85; peak 440 x 0.25 = 110 kWh x 0.28 = 30.80
    assert [(x.description, x.amount) for x in first.issued.bill.lines] == [
        ("fixed charge", Decimal("12.00")),
        ("energy, period 1", Decimal("69.85")),
        ("energy, period 2", Decimal("30.80")),
    ]
    assert (first.issued.number, first.issued.revision) == ("2026-10-0001", 1)
    assert first.issued.readings["m-h01/import"]["estimated"] == 2
    before = _rows(store)

    # the meter delivers the two quarter hours late, 0.75 kWh each: +1 kWh at peak, +0.28
    _ingest(store, site, _frame("m-h01", "import", pd.Series(0.75, index=late)), LATER)
    _vee(store, site, ("m-h01", "import"), now=LATER)
    (second,) = run_billing(site, store, "2026-10", customers={"h01"}, now=LATER)
    assert second.outcome == "revised" and second.issued is not None
    r2 = second.issued
    assert (r2.number, r2.revision, r2.kind) == ("2026-10-0001", 2, "debit note")
    assert r2.difference == Decimal("0.28") and r2.bill.total == Decimal("112.93")
    assert [(x.description, x.quantity, x.unit, x.amount) for x in r2.note] == [
        ("energy, period 2", Decimal("1.0"), "kWh", Decimal("0.28"))
    ]
    assert r2.readings["m-h01/import"]["estimated"] == 0
    assert r2.tariff_version == tariff_version(site.tariffs["residential-tou-nem"])

    # revision 1 is as it was issued, row for row; a run with nothing new issues nothing
    assert _rows(store)[0] == before[0]
    issued = IssuedBills(store, "demo", TZ)
    assert issued.revisions("h01", "2026-10")[0] == first.issued
    (third,) = run_billing(site, store, "2026-10", customers={"h01"}, now=LATER)
    assert third.outcome == "unchanged" and third.issued == r2
    assert len(_rows(store)) == 2


def test_a_correction_gives_a_credit_note(store: Store) -> None:
    site = load_site("demo")
    _ingest(store, site, _frame("m-h01", "import", pd.Series(0.25, index=IDX)), ISSUED)
    _vee(store, site, ("m-h01", "import"), now=ISSUED)
    run_billing(site, store, "2026-10", customers={"h01"}, now=ISSUED)
    audit = AuditLog(store, b"k" * 32)
    ValidatedReadings(store, "demo").edit(
        "m-h01",
        "import",
        _at("2026-10-14 18:00"),
        0.0,
        user="op",
        reason="meter double-counted",
        audit=audit,
        now=LATER,
    )
    (o,) = run_billing(site, store, "2026-10", customers={"h01"}, now=LATER)
    assert o.issued is not None and o.issued.kind == "credit note"
    # 0.25 kWh less at peak: 0.07 less
    assert o.issued.difference == Decimal("-0.07") and o.issued.bill.total == Decimal("112.58")
    assert o.issued.readings["m-h01/import"]["edited"] == 1


def test_an_issued_bill_cannot_be_changed_in_the_store(store: Store) -> None:
    site = load_site("demo")
    _ingest(store, site, _frame("m-h01", "import", pd.Series(0.25, index=IDX)), ISSUED)
    _vee(store, site, ("m-h01", "import"), now=ISSUED)
    run_billing(site, store, "2026-10", customers={"h01"}, now=ISSUED)
    for statement in (
        "UPDATE issued_bills SET document = 'x'",
        "DELETE FROM issued_bills",
    ):
        refused = pytest.raises(sa.exc.DBAPIError, match="issued bills are never changed")
        with refused, store.engine.begin() as conn:
            conn.execute(sa.text(statement))
    with store.engine.begin() as conn:  # altered behind openmeg's back: the hash tells
        if store.dialect == "sqlite":
            conn.execute(sa.text("DROP TRIGGER issued_bills_no_update"))
        else:
            conn.execute(sa.text("ALTER TABLE issued_bills DISABLE TRIGGER issued_bills_frozen"))
        conn.execute(sa.text("UPDATE issued_bills SET document = replace(document, '12', '1')"))
    with pytest.raises(StoreError, match="no longer matches its content hash"):
        IssuedBills(store, "demo", TZ).latest("h01", "2026-10")


def test_bills_are_numbered_in_the_order_they_are_issued(store: Store) -> None:
    site = load_site("demo")
    for meter in ("m-h01", "m-h02"):
        _ingest(store, site, _frame(meter, "import", pd.Series(0.25, index=IDX)), ISSUED)
        _vee(store, site, (meter, "import"), now=ISSUED)
    out = run_billing(site, store, "2026-10", customers={"h01", "h02"}, now=ISSUED)
    assert [(o.customer, o.issued.number) for o in out if o.issued] == [
        ("h01", "2026-10-0001"),
        ("h02", "2026-10-0002"),
    ]


def test_the_carry_over_comes_from_the_previous_months_issued_bill(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    site = load_site("demo")
    seen = []

    def bills_of_tariff(*args, carry_in, **kwargs):  # type: ignore[no-untyped-def]
        seen.append(list(carry_in))
        bills, _ = real(*args, carry_in=[None] * len(carry_in), **kwargs)
        return bills, [{"period 1": float(len(seen))}]

    real = billing_run.bills_of_tariff
    monkeypatch.setattr(billing_run, "bills_of_tariff", bills_of_tariff)
    december = datetime(2026, 12, 2, tzinfo=UTC)
    idx = pd.date_range(START.tz_convert("UTC"), periods=2980 + 2880, freq="15min")
    _ingest(store, site, _frame("m-h01", "import", pd.Series(0.25, index=idx)), december)
    v = ValidatedReadings(store, "demo")
    end = idx[-1] + pd.Timedelta("15min")
    v.run_vee("m-h01", "import", idx[0], end, VeeConfig(timezone=TZ), now=december)
    for period in ("2026-10", "2026-11"):
        run_billing(site, store, period, customers={"h01"}, now=december)
    assert seen == [[None], [{"period 1": 1.0}]]
    november = IssuedBills(store, "demo", TZ).latest("h01", "2026-11")
    assert november is not None and november.carry_out == {"period 1": 2.0}
    # October revised with another carry-over: November, issued on the old one, is named
    export = pd.Series(np.where(np.arange(len(idx)) < 4, 0.5, 0.0), index=idx)
    _ingest(store, site, _frame("m-h01", "export", export), december)
    v.run_vee("m-h01", "export", idx[0], end, VeeConfig(timezone=TZ), active=False, now=december)
    (october,) = run_billing(site, store, "2026-10", customers={"h01"}, now=december)
    assert october.outcome == "revised" and october.issued is not None
    assert october.issued.carry_out == {"period 1": 3.0}
    assert october.follow_up == (
        "the carry-over into 2026-11 changed and 2026-11 is issued: bill it again "
        "(openmeg bill --period 2026-11)"
    )


def test_net_metering_carries_octobers_surplus_into_novembers_bill(store: Store) -> None:
    site = load_site("demo")
    december = datetime(2026, 12, 2, tzinfo=UTC)
    idx = pd.date_range(START.tz_convert("UTC"), periods=2980 + 2880, freq="15min")
    local = idx.tz_convert(TZ)
    sunny = (local.month == 10) & (local.hour >= 10) & (local.hour < 14)  # off-peak
    imp = pd.Series(np.where(sunny, 0.0, 0.25), index=idx)
    exp = pd.Series(np.where(sunny, 2.0, 0.0), index=idx)
    frames = [_frame("m-h01", "import", imp), _frame("m-h01", "export", exp)]
    _ingest(store, site, pd.concat(frames, ignore_index=True), december)
    v = ValidatedReadings(store, "demo")
    end = idx[-1] + pd.Timedelta("15min")
    for channel in ("import", "export"):
        cfg = VeeConfig(timezone=TZ)
        v.run_vee("m-h01", channel, idx[0], end, cfg, active=channel == "import", now=december)
    (october,) = run_billing(site, store, "2026-10", customers={"h01"}, now=december)
    (november,) = run_billing(site, store, "2026-11", customers={"h01"}, now=december)
    assert october.issued is not None and november.issued is not None
    # October off-peak: 2044 x 0.25 = 511 kWh in, 496 x 2 = 992 kWh out: 481 kWh carried;
    # peak 110 kWh x 0.28 = 30.80, fixed 12.00
    assert october.issued.carry_out["surplus_kwh"] == [481.0, 0.0]
    assert october.issued.bill.total == Decimal("42.80")
    # November (30 days, 2880 quarter hours, 21 weekdays): peak 420 x 0.25 = 105 kWh x 0.28 =
    # 29.40; off-peak 2460 x 0.25 = 615 kWh less the 481 carried = 134 kWh x 0.11 = 14.74
    assert november.issued.bill.total == Decimal("56.14")


def test_the_common_part_nets_each_interval() -> None:
    main_in, main_out = np.array([2.0, 0.75, 0.3]), np.array([0.0, 0.0, 0.0])
    subs_in = np.array([[0.25, 0.0, 0.1], [1.0, 0.5, 0.2]])
    subs_out = np.array([[0.0, 1.0, 0.0], [0.0, 0.0, 0.0]])
    imp, exp = common_part(main_in, main_out, subs_in, subs_out)
    assert imp.tolist() == [0.75, 1.25, 0.0] and exp.tolist() == [0.0, 0.0, 0.0]
    imp, exp = common_part(np.array([0.5]), np.array([0.0]), np.array([[1.0]]), np.array([[0.0]]))
    assert imp.tolist() == [0.0] and exp.tolist() == [0.5]


def test_the_association_is_billed_for_the_common_part_only(store: Store) -> None:
    site = load_site("demo")
    common = pd.Series(0.75, index=IDX)  # 3 kW all month
    noon = _at("2026-10-10 12:00")
    sunny = (noon <= IDX) & (noon + pd.Timedelta(hours=1) > IDX)
    owners = {
        "m-o1": pd.Series(np.where(sunny, 0.0, 0.25), index=IDX),
        "m-o2": pd.Series(0.5, index=IDX),
        "m-o3": pd.Series(0.25, index=IDX),
        "m-o4": pd.Series(0.25, index=IDX),
    }
    owners["m-o2"][_at("2026-10-20 18:00")] = 1.5  # o2's peak, 6 kW, in the main meter too
    o1_export = pd.Series(np.where(sunny, 1.0, 0.0), index=IDX)  # o1's PV exports 4 kW
    main = common + sum(owners.values()) - o1_export
    frames = [_frame(m, "import", kwh) for m, kwh in owners.items()]
    frames += [_frame("m-o1", "export", o1_export), _frame("m-bldg1", "import", main)]
    _ingest(store, site, pd.concat(frames, ignore_index=True), ISSUED)
    channels = [(m, "import") for m in owners] + [("m-o1", "export"), ("m-bldg1", "import")]
    _vee(store, site, *channels, now=ISSUED)

    (o,) = run_billing(site, store, "2026-10", customers={"bldg1-assoc"}, now=ISSUED)
    assert o.issued is not None, o.problem
    # commercial-demand: 2980 x 0.75 = 2235 kWh x 0.10 = 223.50; peak 3 kW x 14.5 = 43.50;
    # fixed 35.00 (on the main meter it would be 5956 kWh and a 12 kW peak)
    lines = [(x.description, x.quantity, x.amount) for x in o.issued.bill.lines if x.amount]
    assert lines == [
        ("fixed charge", Decimal("1"), Decimal("35.00")),
        ("energy", Decimal("2235.0"), Decimal("223.50")),
        ("demand", Decimal("3.0"), Decimal("43.50")),
    ]
    assert o.issued.bill.total == Decimal("302.00")
    assert set(o.issued.readings) == {
        f"{m}/{c}" for m in [*owners, "m-bldg1"] for c in ("import", "export")
    }
    # no kWh billed twice: the association's and the owners' net kWh add up to the main meter's
    owners_net = sum(float(s.sum()) for s in owners.values()) - float(o1_export.sum())
    assert float(lines[1][1]) + owners_net == pytest.approx(main.sum(), abs=1e-9)


def test_the_association_is_not_billed_while_a_sub_meter_is_missing(store: Store) -> None:
    site = load_site("demo")
    _ingest(store, site, _frame("m-bldg1", "import", pd.Series(2.0, index=IDX)), ISSUED)
    _vee(store, site, ("m-bldg1", "import"), now=ISSUED)
    (o,) = run_billing(site, store, "2026-10", customers={"bldg1-assoc"}, now=ISSUED)
    assert o.issued is None
    assert o.problem == (
        "no readings for that period: import or run first (meter m-o1, 2026-10); m-o1 is a "
        "sub-meter of m-bldg1, which is billed for its common part"
    )
    assert _rows(store) == []


def test_readings_that_vee_has_not_validated_are_not_billed(store: Store) -> None:
    site = load_site("demo")
    _ingest(store, site, _frame("m-h01", "import", pd.Series(0.25, index=IDX)), ISSUED)
    (o,) = run_billing(site, store, "2026-10", customers={"h01"}, now=ISSUED)
    assert o.issued is None and o.problem.endswith(
        "run VEE first (openmeg vee run --period 2026-10)"
    )
    with pytest.raises(ValueError, match=r"2026-11 is not over until 2026-12-01T00:00:00\+01:00"):
        run_billing(site, store, "2026-11", customers={"h01"}, now=ISSUED)
