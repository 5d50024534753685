"""Hostile input on the billing path: tariffs with non-finite or absurd numbers are refused at
``site check`` naming the field; a bill whose amounts no bill can hold (1e300 kWh) is refused for
that customer only; the ``bill`` command's wording; a missing validated reading named in the
site's time, inside the month."""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from pydantic import ValidationError
from typer.testing import CliRunner

from openmeg.cli import app
from openmeg.core.site import SITES_DIR, load_site
from openmeg.core.store import Store
from openmeg.core.tariff import Tariff
from openmeg.operation.mdms.store import MeterReadings
from openmeg.provider import billing_run
from openmeg.provider.bill_matrix import AmountError, to_cents
from openmeg.provider.billed_energy import BilledEnergy, billed_energies
from openmeg.provider.billing import bill_month
from openmeg.provider.billing_run import month_bounds, run_billing

TZ = "Europe/Rome"
START, END = pd.Timestamp("2026-10-01", tz=TZ), pd.Timestamp("2026-11-01", tz=TZ)
IDX = pd.date_range(START.tz_convert("UTC"), END.tz_convert("UTC"), freq="15min", inclusive="left")
NOW = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)
FLAT = [[0] * 24] * 12
TOU = {
    "energyratestructure": [[{"rate": 0.11}], [{"rate": 0.28}]],
    "energyweekdayschedule": [[0] * 16 + [1] * 5 + [0] * 3] * 12,
    "energyweekendschedule": FLAT,
}


def _refused(data: dict[str, object]) -> str:
    with pytest.raises(ValidationError) as info:
        Tariff.model_validate(data)
    return str(info.value)


@pytest.mark.parametrize(
    ("edit", "field", "says"),
    [
        ({"fixedchargefirstmeter": float("nan")}, "fixedchargefirstmeter", "finite number"),
        ({"mincharge": float("inf")}, "mincharge", "finite number"),
        ({"nm_yearend_sell_rate": float("-inf")}, "nm_yearend_sell_rate", "finite number"),
        ({"fixedchargefirstmeter": 2e7}, "fixedchargefirstmeter", "less than or equal to 1000"),
        (
            {"energyratestructure": [[{"rate": 0.11}], [{"rate": 1e4}]]},
            "energyratestructure.1.0.rate",
            "less than or equal to 1000",
        ),
        (
            {"energyratestructure": [[{"rate": 0.11, "sell": float("nan")}], [{"rate": 0.2}]]},
            "energyratestructure.0.0.sell",
            "finite number",
        ),
        (
            {"energyratestructure": [[{"max": float("inf"), "rate": 0.1}], [{"rate": 0.2}]]},
            "energyratestructure.0.0.max",
            "finite number",
        ),
    ],
)
def test_non_finite_and_absurd_tariff_numbers_are_refused_naming_the_field(
    edit: dict[str, object], field: str, says: str
) -> None:
    msg = _refused({**TOU, **edit})
    assert f"\n{field}\n" in msg and says in msg


def test_flat_demand_months_must_name_flat_demand_periods() -> None:
    msg = _refused({"flatdemandstructure": [[{"rate": 5}]], "flatdemandmonths": [0] * 11 + [1]})
    assert "flatdemandmonths names periods [1] that flatdemandstructure does not have" in msg
    ok = Tariff.model_validate(
        {"flatdemandstructure": [[{"rate": 5}]], "flatdemandmonths": [0] * 12}
    )
    assert ok.flatdemandmonths == [0] * 12


def test_tier_units_belong_to_their_structure() -> None:
    demand = {"demandweekdayschedule": FLAT, "demandweekendschedule": FLAT}
    msg = _refused({**demand, "demandratestructure": [[{"max": 10, "unit": "kWh", "rate": 5}]]})
    assert (
        "demandratestructure[0][0].unit 'kWh' is not a unit of this structure; accepted: kW" in msg
    )
    msg = _refused(
        {"flatdemandstructure": [[{"unit": "kWh daily", "rate": 5}]], "flatdemandmonths": [0] * 12}
    )
    assert "flatdemandstructure[0][0].unit 'kWh daily' is not a unit" in msg
    msg = _refused({**TOU, "energyratestructure": [[{"max": 5, "unit": "kW", "rate": 1}], [{}]]})
    assert "accepted: kWh, kWh daily, kWh/kW, kWh/kW daily" in msg
    Tariff.model_validate(
        {**demand, "demandratestructure": [[{"max": 10, "unit": "kW", "rate": 5}]]}
    )


def test_different_tier_limits_in_one_month_are_refused_when_the_tariff_is_read() -> None:
    tiers = [[{"max": 300, "rate": 0.1}, {"rate": 0.2}], [{"max": 100, "rate": 0.3}, {"rate": 0.5}]]
    msg = _refused({**TOU, "energyratestructure": tiers})
    assert (
        "tariff 'tariff': energy period 2 has tier limits [100.0, inf], period 1 [300.0, inf] in "
        "the same month; tiers fill with the month's total (NREL's reading), so give every period "
        "of a month the same tier limits"
    ) in msg
    # periods that never share a month may differ: winter period 1, summer period 2
    seasonal = {
        "energyratestructure": tiers,
        "energyweekdayschedule": [[0] * 24] * 6 + [[1] * 24] * 6,
        "energyweekendschedule": [[0] * 24] * 6 + [[1] * 24] * 6,
    }
    assert len(Tariff.model_validate(seasonal).energyratestructure) == 2


def test_site_check_names_the_tariff_field_and_exits_2(tmp_path: Path) -> None:
    data = yaml.safe_load((SITES_DIR / "demo.yaml").read_text())
    name = next(iter(data["tariffs"]))
    data["tariffs"][name]["energyratestructure"][1][0]["rate"] = float("nan")
    path = tmp_path / "site.yaml"
    path.write_text(yaml.safe_dump(data))
    run = subprocess.run(
        [sys.executable, "-m", "openmeg", "site", "check", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert run.returncode == 2 and "Traceback" not in run.stderr
    assert "energyratestructure" in run.stderr and "finite number" in run.stderr


def test_an_amount_no_bill_can_hold_is_refused_for_that_customer_only() -> None:
    tariff = Tariff.model_validate(TOU)
    imp = np.full((4, len(IDX)), 0.25)
    exp = np.zeros_like(imp)
    imp[1, 10] = 1e300  # 2026-10-01 02:30 local, off-peak: 1e300 x 0.11 = 1.1e299
    imp[2, 20] = np.inf
    imp[3, :] = 1e307  # finite, but an hour adds up beyond a float: 4 x 1e307 > 1.8e308
    with pytest.raises(AmountError) as info:  # an infinite reading: refused before billing
        bill_month(
            tariff,
            IDX,
            imp,
            exp,
            timezone=TZ,
            customers=["a", "b", "c", "d"],
            meters=["ma", "mb", "mc", "md"],
        )
    assert list(info.value.rows) == ["c", "d"]
    assert info.value.rows["d"].startswith("readings that add up beyond what a number holds")
    assert info.value.rows["c"].startswith("an infinite reading for 2026-10-01T03:00:00+00:00")
    with pytest.raises(AmountError) as info:  # the others billed again: b's amount refused
        bill_month(
            tariff, IDX, imp[:2], exp[:2], timezone=TZ, customers=["a", "b"], meters=["ma", "mb"]
        )
    assert list(info.value.rows) == ["b"]
    assert info.value.rows["b"].startswith(
        "bill line 'energy, period 1' comes to 1.1e+299 for 1e+300 kWh, beyond what a bill can "
        "hold (1e+10); check the readings: VEE flags"
    )
    assert "customer 'b': bill line" in str(info.value)
    (a,), _ = bill_month(tariff, IDX, imp[:1], exp[:1], timezone=TZ, customers=["a"], meters=["ma"])
    # 745 h (the 25th has 25) x 4 x 0.25 = 745 kWh; peak 22 weekdays x 5 h = 110 kWh x 0.28 =
    # 30.80; off-peak 635 kWh x 0.11 = 69.85
    assert a.total == Decimal("100.65")
    huge = np.full((1, len(IDX)), 1e305)  # every run finite, the month's total beyond a float
    with pytest.raises(
        AmountError, match="customer 'z': bill line 'energy, period 1' comes to nan for nan kWh"
    ):
        bill_month(tariff, IDX, huge, huge * 0, timezone=TZ, customers=["z"], meters=["mz"])
    with pytest.raises(ValueError, match="not finite or beyond 1e\\+10"):
        to_cents(np.array([1e300]))


def test_a_run_bills_the_others_and_issues_nothing_for_a_customer_with_1e300_kwh(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    site = load_site("demo")

    def energies(site: object, store: object, meters: list[str], *_: object) -> dict[str, object]:
        out: dict[str, object] = {}
        for m in meters:
            imp = np.full(len(IDX), 0.25)
            if m == "m-h02":
                imp[10] = 1e300
            out[m] = BilledEnergy(
                index=IDX, import_values=imp, export_values=np.zeros(len(IDX)), readings={}
            )
        return out

    monkeypatch.setattr(billing_run, "billed_energies", energies)
    outcomes = {
        o.customer: o
        for o in run_billing(site, store, "2026-10", customers={"h01", "h02"}, now=NOW)
    }
    assert outcomes["h02"].issued is None
    assert (
        "bill line 'energy, period 1' comes to 1.1e+299 for 1e+300 kWh" in outcomes["h02"].problem
    )
    h01 = outcomes["h01"].issued
    assert h01 is not None and h01.bill.total == Decimal("112.65")  # 100.65 + 12.00 fixed


def test_bill_wording_lines_currency_and_unknown_customer(tmp_path: Path) -> None:
    db = f"sqlite+pysqlite:///{tmp_path / 'meg.db'}"
    run = CliRunner().invoke(
        app, ["bill", "--period", "2026-10", "--customer", "nobody", "--store", db]
    )
    assert run.exit_code == 2
    assert run.stderr.startswith("error: no customer 'nobody' in the site (customers: ")
    assert "h01, h02" in run.stderr and "Traceback" not in run.stderr
    run = CliRunner().invoke(app, ["bill", "--period", "9999-12", "--store", db])
    assert run.exit_code == 2 and "of the years 1900 to 2199" in run.stderr
    with pytest.raises(ValueError, match=r"\(01-12\) of the years 1900 to 2199"):
        month_bounds("2026-13", TZ)


def test_bill_says_one_line_and_the_currency(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    db = f"sqlite+pysqlite:///{tmp_path / 'meg.db'}"
    frame = pd.DataFrame(
        {"meter": "m-h01", "channel": "import", "interval_start": IDX, "value_kwh": 0.0}
    )
    store = Store(db)
    MeterReadings(store).ingest(frame, meters={"m-h01"}, source="test", received_at=NOW)
    store.close()
    invoke = CliRunner().invoke
    vee = invoke(app, ["vee", "run", "--period", "2026-10", "--store", db])
    assert vee.exit_code in (0, 1), vee.output
    run = invoke(
        app,
        [
            "bill",
            "--period",
            "2026-10",
            "--customer",
            "h01",
            "--store",
            db,
            "--out",
            str(tmp_path / "b"),
        ],
    )
    # no energy: only the fixed charge, 12.00
    assert run.stdout.strip() == "h01: USD 12.00 (1 line), bill 2026-10-0001 issued", run.output


def test_a_missing_validated_reading_is_named_in_the_sites_time_inside_the_month(
    store: Store,
) -> None:
    site = load_site("demo")
    kept = IDX[pd.Timestamp("2026-10-31T19:00Z") > IDX]  # the last 4 hours of Oct 31 missing
    frame = pd.DataFrame(
        {"meter": "m-h01", "channel": "import", "interval_start": kept, "value_kwh": 0.25}
    )
    MeterReadings(store).ingest(frame, meters={"m-h01"}, source="test", received_at=NOW)
    (msg,) = billed_energies(site, store, ["m-h01"], "2026-10", START, END).values()
    assert msg == (
        "no validated import reading of m-h01 for 2026-10-31T20:00:00+01:00 (the first interval "
        "of 2026-10 without one): run VEE first (openmeg vee run --period 2026-10)"
    )
