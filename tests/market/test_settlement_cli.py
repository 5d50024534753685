"""``openmeg market settlement``: what was settled on the validated series, what waits for VEE,
and what was cleared in real time but is not settled yet (demo site, Rome; local day 1 June
2026 from 22:00 UTC on 31 May: h01 imports 0.5 kWh each interval, h02 exports 0.3 kWh,
nothing cleared locally, the utility buys at 0.30 and sells at 0.10)."""

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd
from typer.testing import CliRunner

from openmeg.cli import app
from openmeg.core.messages import PriceChange
from openmeg.core.store import Store, sqlite_url
from openmeg.customer.price_book import PriceBook
from openmeg.market.local_market import LocalMarket
from openmeg.operation.mdms.store import MeterReadings
from openmeg.operation.mdms.validated import ValidatedReadings
from openmeg.operation.mdms.vee import VeeConfig
from openmeg.operation.mdms.vee_run import vee_channel

T0 = datetime(2026, 5, 31, 22, 0, tzinfo=UTC)  # local midnight (+02:00)
T1 = T0 + timedelta(days=1)
STARTS = pd.date_range(T0, periods=96, freq="15min")
ROME = VeeConfig(timezone="Europe/Rome")
SPAN = ("--from", "2026-05-31T20:00+02:00", "--to", "2026-06-01T20:00+02:00")  # 18:00 UTC


@dataclass
class Done:
    code: int
    out: list[str]
    err: str


def _settlement(url: str, *args: str) -> Done:
    r = CliRunner().invoke(app, ["market", "settlement", *SPAN, "--store", url, *args])
    return Done(r.exit_code, r.stdout.splitlines(), r.stderr)


def _store(tmp_path: Path) -> tuple[str, Store]:
    url = sqlite_url(tmp_path / "meg.db")
    db = Store(url)
    db.create_schema()
    frames = [
        pd.DataFrame({"meter": m, "channel": c, "interval_start": STARTS, "value_kwh": v})
        for m, c, v in (
            ("m-h01", "import", 0.5),
            ("m-h01", "export", 0.0),
            ("m-h02", "import", 0.0),
            ("m-h02", "export", 0.3),
        )
    ]
    MeterReadings(db).ingest(
        pd.concat(frames), meters={"m-h01", "m-h02"}, source="test", received_at=T1
    )
    PriceBook(db, "demo").record(
        [PriceChange(effective_from=T0, buy=0.30, sell=0.10)], received_at=T0
    )
    return url, db


def test_days_are_settled_once_validated_and_the_rest_is_named(tmp_path: Path) -> None:
    url, db = _store(tmp_path)
    LocalMarket(db, "demo", {"h01", "h02"}).clear_interval(
        T0 - timedelta(minutes=15), {"h01": 1.0}, buy=0.30, sell=0.10
    )  # 23:45 local on 31 May: a day that is not in the period
    LocalMarket(db, "demo", {"h01", "h02"}).clear_interval(
        T0, {"h01": 0.5, "h02": -0.3}, buy=0.30, sell=0.10
    )
    waiting = _settlement(url)
    assert waiting.code == 0, waiting.err
    assert waiting.out == [
        "not settled yet: 2026-06-01 for bldg1-assoc, clinic, community and 15 more "
        "(m-bldg1: no readings on 2026-06-01)",
        "cleared in real time on the readings as they came, not settled yet:",
        "h01: local +0.300 kWh, utility +1.200 kWh, paid +0.42",
        "h02: local -0.300 kWh, utility +0.000 kWh, paid -0.06",
        "2 intervals; + bought or paid, - sold or received",
    ]
    one = _settlement(url, "--customer", "h01")
    assert one.out[0] == (
        "not settled yet: 2026-06-01 for h01 (m-h01 import: not validated yet "
        "(openmeg vee run, or the automatic VEE))"
    )
    v = ValidatedReadings(db, "demo")
    for channel in ("import", "export"):
        vee_channel(v, ["m-h01", "m-h02"], channel, T0, T1, ROME, active=False, now=T1)
    db.close()
    done = _settlement(url, "--customer", "h01")
    # 0.3 kWh locally at 0.20 in the first interval, the rest (47.7 kWh) at 0.30: 14.37
    assert done.out == [
        "settled on the validated series, local days in Europe/Rome:",
        "h01: local +0.300 kWh, utility +47.700 kWh, paid +14.37 (2026-06-01 rev 1)",
        "cleared in real time on the readings as they came, not settled yet:",
        "h01: local +0.000 kWh, utility +1.000 kWh, paid +0.30",  # 31 May, local
        "1 intervals; + bought or paid, - sold or received",
    ]
    again = _settlement(url, "--customer", "h02")
    assert again.out[1] == (
        "h02: local -0.300 kWh, utility -28.500 kWh, paid -2.91 (2026-06-01 rev 1)"
    )


def test_a_period_without_validated_readings_says_what_to_do(tmp_path: Path) -> None:
    url, db = _store(tmp_path)
    db.close()
    done = _settlement(url, "--customer", "h01")
    assert done.code == 1
    assert (
        "no settled interval from 2026-05-31 18:00 to 2026-06-01 18:00 UTC for h01: not "
        "validated yet: 2026-06-01 for h01 (m-h01 import: not validated yet" in done.err
    )
    nobody = _settlement(url, "--customer", "h05")
    assert nobody.code == 1 and "run it through that period first" in nobody.err
