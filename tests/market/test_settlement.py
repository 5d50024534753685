"""The local market settled on the validated series, a local day at a time, hand-computed.

Two prosumers, one UTC day: c1 imports 0.5 kWh each interval, c2 exports 0.3 kWh; the utility
buys at 0.30 and sells at 0.10, so every interval clears 0.3 kWh locally at 0.20. Interval 40 of
c1's import did not come in time: that interval cleared without c1 (c2 sold to the utility)."""

from datetime import UTC, date, datetime, timedelta

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa

from openmeg.core.messages import PriceChange
from openmeg.core.store import Store
from openmeg.customer.price_book import PriceBook
from openmeg.market.local_market import LocalMarket
from openmeg.market.settlement import cents, imbalance_money, p2p_day_settlements
from openmeg.market.settlement_run import MarketSettlement
from openmeg.operation.mdms.store import MeterReadings
from openmeg.operation.mdms.validated import ValidatedReadings
from openmeg.operation.mdms.vee import VeeConfig
from openmeg.operation.mdms.vee_run import vee_channel

DAY = date(2026, 6, 1)
T0 = datetime(2026, 6, 1, tzinfo=UTC)
T1 = T0 + timedelta(days=1)
STARTS = pd.date_range(T0, periods=96, freq="15min")
LATE = 40
METERS = {"c1": "m1", "c2": "m2"}


def _readings(meter: str, channel: str, kwh: float, skip: int | None = None) -> pd.DataFrame:
    keep = np.arange(96) != (-1 if skip is None else skip)
    return pd.DataFrame(
        {"meter": meter, "channel": channel, "interval_start": STARTS[keep], "value_kwh": kwh}
    )


def _ingest(store: Store, *frames: pd.DataFrame, at: datetime) -> None:
    MeterReadings(store).ingest(
        pd.concat(frames, ignore_index=True), meters={"m1", "m2"}, source="test", received_at=at
    )


def _vee(v: ValidatedReadings, now: datetime) -> None:
    for channel in ("import", "export"):
        done = vee_channel(v, ["m1", "m2"], channel, T0, T1, VeeConfig(), active=False, now=now)
        assert [r.problem for r in done] == ["", ""]


@pytest.fixture
def market(store: Store) -> MarketSettlement:
    """The day cleared in real time on the readings as they came."""
    after = T1 + timedelta(minutes=5)
    _ingest(
        store,
        _readings("m1", "import", 0.5, skip=LATE),
        _readings("m1", "export", 0.0),
        _readings("m2", "import", 0.0),
        _readings("m2", "export", 0.3),
        at=after,
    )
    book = PriceBook(store, "demo")
    book.record([PriceChange(effective_from=T0, buy=0.30, sell=0.10)], received_at=T0)
    local = LocalMarket(store, "demo", set(METERS))
    for k, start in enumerate(STARTS):
        positions = {"c2": -0.3} if k == LATE else {"c1": 0.5, "c2": -0.3}
        local.clear_interval(start.to_pydatetime(), positions, buy=0.30, sell=0.10)
    return MarketSettlement(store, "demo", timezone="UTC", meters=METERS, book=book)


def test_the_money_of_an_interval() -> None:
    utility, local_money, utility_money = imbalance_money(
        np.array([[0.5, 0.5, np.nan], [-0.3, -0.3, -0.3]]),
        np.array([[0.3, 0.0, 0.0], [-0.3, 0.0, 0.0]]),
        np.array([0.2, np.nan, np.nan]),
        np.array([0.30, 0.30, 0.30]),
        np.array([0.10, 0.10, 0.10]),
    )
    np.testing.assert_allclose(utility, [[0.2, 0.5, 0.0], [0.0, -0.3, -0.3]], atol=1e-12)
    np.testing.assert_allclose(local_money, [[0.06, 0.0, 0.0], [-0.06, 0.0, 0.0]], atol=1e-12)
    np.testing.assert_allclose(utility_money, [[0.06, 0.15, 0.0], [0.0, -0.03, -0.03]], atol=1e-12)
    assert (cents(10.005), cents(-0.125), cents(5.7000000001)) == (1001, -13, 570)


def test_a_day_is_settled_once_vee_validated_it(store: Store, market: MarketSettlement) -> None:
    state = market.state(DAY)
    assert state.basis == {}
    assert state.waiting == {
        "c1": "m1 import: not validated yet (openmeg vee run, or the automatic VEE)",
        "c2": "m2 import: not validated yet (openmeg vee run, or the automatic VEE)",
    }
    now = T1 + timedelta(hours=1)
    assert market.settle(DAY, now=now).revised == []
    _vee(market.validated, now)
    done = market.settle(DAY, now=now)
    assert (done.revised, done.waiting) == (["c1", "c2"], {})
    rows = market.latest(["2026-06-01"]).set_index("customer")
    # c1: 48 kWh validated (interval 40 estimated at 0.5), 95 x 0.3 locally at 0.20 = 5.70,
    # the rest 19.5 kWh from the utility at 0.30 = 5.85
    assert rows.loc["c1", ["position_kwh", "local_kwh", "utility_kwh"]].tolist() == [
        48.0,
        28.5,
        19.5,
    ]
    assert rows.loc["c1", ["local_cents", "utility_cents", "money_cents"]].tolist() == [
        570,
        585,
        1155,
    ]
    # c2: 28.8 kWh sold, 95 x 0.3 locally (-5.70), interval 40's 0.3 to the utility at 0.10
    assert rows.loc["c2", ["local_cents", "utility_cents", "money_cents"]].tolist() == [
        -570,
        -3,
        -573,
    ]
    assert rows.revision.tolist() == [1, 1]
    assert rows.difference_cents.tolist() == rows.money_cents.tolist()
    again = market.settle(DAY, now=now + timedelta(hours=1))
    assert (again.revised, again.unchanged) == ([], ["c1", "c2"])  # nothing new is stored
    assert len(market.revisions(["2026-06-01"])) == 2


def test_a_late_reading_re_settles_by_the_exact_difference(
    store: Store, market: MarketSettlement
) -> None:
    now = T1 + timedelta(hours=1)
    _vee(market.validated, now)
    market.settle(DAY, now=now)
    first = market.revisions(["2026-06-01"])
    late = T1 + timedelta(hours=3)
    _ingest(store, _readings("m1", "import", 0.9).iloc[[LATE]], at=late)
    assert market.state(DAY).waiting == {
        "c1": "m1 import: readings changed since VEE validated them"
    }
    assert market.settle(DAY, now=late).revised == []  # not until VEE takes the reading
    _vee(market.validated, late)
    done = market.settle(DAY, now=late)
    assert (done.revised, done.unchanged) == (["c1"], ["c2"])
    rows = market.revisions(["2026-06-01"])
    c1 = rows[rows.customer == "c1"].set_index("revision")
    # 0.4 kWh more from the utility at 0.30: 0.12 more to pay
    assert c1.loc[2, "position_kwh"] == pytest.approx(48.4)
    assert c1.loc[2, ["money_cents", "difference_cents"]].tolist() == [1167, 12]
    # revision 1 stays as it was
    pd.testing.assert_frame_equal(
        rows[rows.revision == 1].reset_index(drop=True), first.reset_index(drop=True)
    )
    with pytest.raises(sa.exc.DatabaseError, match="never changed"), store.engine.begin() as conn:
        conn.execute(p2p_day_settlements.update().values(money_cents=0))


def test_a_prosumer_without_readings_waits_and_holds_up_no_other(store: Store) -> None:
    _ingest(store, _readings("m2", "import", 0.0), _readings("m2", "export", 0.3), at=T1)
    book = PriceBook(store, "demo")
    book.record([PriceChange(effective_from=T0, buy=0.30, sell=0.10)], received_at=T0)
    market = MarketSettlement(store, "demo", timezone="UTC", meters=METERS, book=book)
    for channel in ("import", "export"):
        vee_channel(market.validated, ["m2"], channel, T0, T1, VeeConfig(), active=False, now=T1)
    done = market.settle(DAY, now=T1)
    assert done.waiting == {"c1": "m1: no readings on 2026-06-01"}
    # nothing cleared locally: all 28.8 kWh sold to the utility at 0.10
    assert market.latest(["2026-06-01"]).money_cents.tolist() == [-288]


@pytest.mark.parametrize(
    ("day", "intervals", "money_cents"),
    [(date(2026, 3, 8), 92, 1380), (date(2026, 11, 1), 100, 1500)],
)
def test_a_local_day_of_a_clock_change_is_settled_whole(
    store: Store, day: date, intervals: int, money_cents: int
) -> None:
    """c1 imports 0.5 kWh each interval of the day, bought from the utility at 0.30."""
    tz = "America/New_York"
    start = pd.Timestamp(day).tz_localize(tz).tz_convert("UTC")
    starts = pd.date_range(start, periods=intervals, freq="15min")
    assert starts[-1] + pd.Timedelta(minutes=15) == pd.Timestamp(
        day + timedelta(days=1)
    ).tz_localize(tz)
    MeterReadings(store).ingest(
        pd.concat(
            [
                pd.DataFrame(
                    {"meter": "m1", "channel": c, "interval_start": starts, "value_kwh": v}
                )
                for c, v in (("import", 0.5), ("export", 0.0))
            ]
        ),
        meters={"m1"},
        source="test",
        received_at=start.to_pydatetime() + timedelta(days=2),
    )
    book = PriceBook(store, "demo")
    book.record(
        [PriceChange(effective_from=start.to_pydatetime(), buy=0.30, sell=0.10)],
        received_at=start.to_pydatetime(),
    )
    market = MarketSettlement(store, "demo", timezone=tz, meters={"c1": "m1"}, book=book)
    v = market.validated
    end = starts[-1] + pd.Timedelta(minutes=15)
    for channel in ("import", "export"):
        vee_channel(
            v,
            ["m1"],
            channel,
            start.to_pydatetime(),
            end.to_pydatetime(),
            VeeConfig(timezone=tz),
            active=False,
            now=end.to_pydatetime(),
        )
    assert market.settle(day, now=end.to_pydatetime()).revised == ["c1"]
    row = market.latest([day.isoformat()]).iloc[0]
    assert row.position_kwh == intervals * 0.5
    assert row.money_cents == money_cents
