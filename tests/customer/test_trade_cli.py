"""``openmeg trade``: the trading system's control point on the command line. Bad reference
prices are refused with a clear error and change nothing."""

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from openmeg.cli import app
from openmeg.core.messages import PriceChange
from openmeg.core.store import Store, sqlite_url
from openmeg.customer.price_book import PriceBook
from openmeg.operation.mdms.store import MeterReadings

T0 = datetime(2026, 6, 1, 10, 0, tzinfo=UTC)


@dataclass
class Done:
    returncode: int
    stdout: str
    stderr: str


def _openmeg(*args: str) -> Done:
    """The command, run in this process (the subprocess form is tested for ``revenue``)."""
    result = CliRunner().invoke(app, list(args))
    return Done(result.exit_code, result.stdout, result.stderr)


@pytest.fixture
def url(tmp_path: Path) -> str:
    return sqlite_url(tmp_path / "meg.db")


def _show(url: str) -> str:
    done = _openmeg("trade", "show", "--store", url)
    assert done.returncode == 0, done.stderr
    return done.stdout


def _set_h01(url: str, *extra: str) -> Done:
    """h01 buys at or below 0.06 and sells at or above 0.2."""
    return _openmeg(
        "trade",
        "set",
        "--customer",
        "h01",
        "--purchase",
        "0.06",
        "--sale",
        "0.2",
        *extra,
        "--store",
        url,
    )


def test_set_show_and_stop(url: str) -> None:
    assert _show(url).startswith("nobody trades")
    done = _set_h01(url)
    assert done.returncode == 0, done.stderr
    assert _show(url) == "h01: 00-24 h: buy at or below 0.06, sell at or above 0.2\n"
    done = _openmeg(
        "trade",
        "set",
        "--customer",
        "h05",
        "--window",
        "0-7:0.05:0.25",
        "--window",
        "17-21:0.1:0.3",
        "--store",
        url,
    )
    assert done.returncode == 0, done.stderr
    assert _show(url).splitlines()[1:] == [
        "h05: 00-07 h: buy at or below 0.05, sell at or above 0.25",
        "h05: 17-21 h: buy at or below 0.1, sell at or above 0.3",
    ]
    assert _openmeg("trade", "stop", "--customer", "h01", "--store", url).returncode == 0
    assert not _show(url).startswith("h01")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--customer", "h01", "--purchase", "-0.01", "--sale", "0.2"], "must not be negative"),
        (["--customer", "h01", "--purchase", "cheap", "--sale", "0.2"], "'--purchase'"),
        (["--customer", "h01", "--purchase", "0.3", "--sale", "0.2"], "must lie below"),
        (["--customer", "h01", "--window", "6-9:0.1:0.3", "--window", "8-10:0.1:0.3"], "overlap"),
        (["--customer", "h01", "--window", "6-9:x:0.3"], "FROM-TO:PURCHASE:SALE"),
        (["--customer", "h01", "--window", "20-26:0.1:0.3"], "within 0 .. 24"),
        (["--customer", "h01"], "give --purchase and --sale"),
        (["--customer", "nobody", "--purchase", "0.1", "--sale", "0.2"], "unknown customer"),
        (["--customer", "h02", "--purchase", "0.1", "--sale", "0.2"], "no storage"),
    ],
)
def test_bad_references_are_refused_and_change_nothing(
    url: str, args: list[str], message: str
) -> None:
    ok = _set_h01(url)
    assert ok.returncode == 0
    before = _show(url)
    done = _openmeg("trade", "set", *args, "--store", url)
    assert done.returncode == 2 and message in done.stderr, done.stderr
    assert _show(url) == before


def test_accounts_from_the_smart_meter_and_stored_prices(url: str) -> None:
    db = Store(url)
    db.create_schema()
    PriceBook(db, "demo").record(
        [
            PriceChange(effective_from=T0, buy=0.10, sell=0.08),
            PriceChange(effective_from=T0 + timedelta(minutes=7), buy=0.40, sell=0.20),
            PriceChange(effective_from=T0 + timedelta(minutes=15), buy=0.12, sell=0.09),
            PriceChange(effective_from=T0 + timedelta(minutes=45), buy=-0.02, sell=-0.05),
        ],
        received_at=T0,
    )
    rows = [
        ("m-h01", ch, T0 + timedelta(minutes=15 * i), v)
        for ch, values in (("import", [1.0, 0.5, 0.0, 0.0]), ("export", [0.0, 0.0, 2.0, 1.0]))
        for i, v in enumerate(values)
    ]
    frame = pd.DataFrame(rows, columns=["meter", "channel", "interval_start", "value_kwh"])
    MeterReadings(db).ingest(
        frame, meters={"m-h01"}, source="test", received_at=T0 + timedelta(hours=1)
    )
    db.close()
    assert _set_h01(url, "--incentive", "0.01").returncode == 0
    done = _openmeg(
        "trade",
        "accounts",
        "--customer",
        "h01",
        "--from",
        "2026-06-01T10:00Z",
        "--to",
        "2026-06-01T11:15Z",
        "--store",
        url,
    )
    assert done.returncode == 0, done.stderr
    # bought 1.0 kWh at (7 x 0.10 + 8 x 0.40) / 15 = 0.26 and 0.5 at 0.12: 0.32
    # sold 2.0 at 0.09 and 1.0 at -0.05: 0.13; incentive 3 kWh x 0.01
    assert done.stdout.splitlines()[1:] == [
        "  bought 1.500 kWh for 0.32",
        "  sold 3.000 kWh for 0.13, incentives 0.03",
        "  net -0.16",
        "  1 intervals without a reading or a price",
    ]
    bad = _openmeg(
        "trade",
        "accounts",
        "--customer",
        "h01",
        "--from",
        "2026-06-01T11:00Z",
        "--to",
        "2026-06-01T10:00Z",
        "--store",
        url,
    )
    assert bad.returncode == 2 and "--to must come after --from" in bad.stderr


def _order(url: str, interval: str, terms: str) -> Done:
    """An order of h03's: ``terms`` like ``--side sell --price 0.4 --kwh 1``."""
    args = ["market", "order", "--customer", "h03", "--interval", interval, *terms.split()]
    return _openmeg(*args, "--store", url)


def test_market_orders_and_settlement(url: str) -> None:
    from openmeg.market.local_market import LocalMarket

    ahead = "2030-06-01T16:00Z"
    done = _order(url, ahead, "--side sell --price 0.4 --kwh 1")
    assert done.returncode == 0, done.stderr
    for terms, message in (
        ("--side hold --price 0.4 --kwh 1", "--side is buy or sell"),
        ("--side buy --price 0.4 --kwh -1", "must be positive"),
        ("--side buy --price nan --kwh 1", "finite number"),
    ):
        done = _order(url, ahead, terms)
        assert done.returncode == 2 and message in done.stderr, done.stderr
    done = _order(url, "2020-06-01T16:00Z", "--side buy --price 0.1 --kwh 1")
    assert done.returncode == 2 and "has begun" in done.stderr
    db = Store(url)
    market = LocalMarket(db, "demo", {"h01", "h02", "h03", "h04"})
    assert len(market.entered(datetime(2030, 6, 1, 16, tzinfo=UTC))) == 1
    market.clear_interval(T0, {"h01": -2.0, "h02": 1.5, "h04": 2.0}, buy=0.30, sell=0.05)
    db.close()
    done = _openmeg(
        "market",
        "settlement",
        "--from",
        "2026-06-01T10:00Z",
        "--to",
        "2026-06-01T11:00Z",
        "--store",
        url,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [
        "cleared in real time on the readings as they came, not settled yet:",
        "h01: local -2.000 kWh, utility +0.000 kWh, paid -0.35",
        "h02: local +1.500 kWh, utility +0.000 kWh, paid +0.26",
        "h04: local +0.500 kWh, utility +1.500 kWh, paid +0.54",
        "1 intervals; + bought or paid, - sold or received",
    ]
