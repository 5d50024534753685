"""The live MEG's prosumer economics settle the local days the automatic VEE validated, and
re-settle a day when late readings change it: demo site (Rome), local day 1 June 2026,
h01 imports 0.5 kWh each interval and h02 exports 0.3 kWh; nothing cleared locally, so all of
it is traded with the utility (buy 0.30, sell 0.10)."""

from datetime import UTC, date, datetime, timedelta

import pandas as pd

from openmeg.core.audit import AuditLog
from openmeg.core.bus import InProcessBus
from openmeg.core.clock import SimClock
from openmeg.core.messages import PriceChange
from openmeg.core.site import load_site
from openmeg.core.store import Store
from openmeg.customer.prosumer_economics import ProsumerEconomics
from openmeg.operation.mdms.store import MeterReadings
from openmeg.operation.mdms.vee import VeeConfig
from openmeg.operation.mdms.vee_service import VeeService

T0 = datetime(2026, 5, 31, 22, 0, tzinfo=UTC)  # local midnight (+02:00)
DAY = date(2026, 6, 1)
T1 = T0 + timedelta(days=1)
STARTS = pd.date_range(T0, periods=96, freq="15min")
METERS = {"m-h01", "m-h02"}


def _frame(meter: str, channel: str, kwh: float, starts: pd.DatetimeIndex) -> pd.DataFrame:
    return pd.DataFrame(
        {"meter": meter, "channel": channel, "interval_start": starts, "value_kwh": kwh}
    )


async def test_validated_days_are_settled_and_re_settled(store: Store) -> None:
    site = load_site("demo")
    readings = MeterReadings(store)
    readings.ingest(
        pd.concat(
            [
                _frame("m-h01", "import", 0.5, STARTS.delete(10)),  # interval 10 late
                _frame("m-h01", "export", 0.0, STARTS),
                _frame("m-h02", "import", 0.0, STARTS),
                _frame("m-h02", "export", 0.3, STARTS),
            ]
        ),
        meters=METERS,
        source="test",
        received_at=T1,
    )
    clock = SimClock(T1 + timedelta(hours=1))
    economics = ProsumerEconomics(
        site,
        clock=clock,
        bus=InProcessBus(),
        store=store,
        audit=AuditLog(store, b"k" * 32),
        market_prices=pd.DataFrame(  # none in the next 24 h: the feed publishes nothing
            {"interval_start": [T0 - timedelta(days=9)], "buy": [0.3], "sell": [0.1]}
        ),
    )
    economics.book.record([PriceChange(effective_from=T0, buy=0.30, sell=0.10)], received_at=T0)
    cfg = VeeConfig(timezone=site.site.timezone, **site.vee.model_dump())
    settlement = economics.settlement

    await economics.before_cycle()
    assert settlement.latest(["2026-06-01"]).empty  # not validated yet
    await VeeService("demo", store, sorted(METERS), cfg, clock=clock).pump()
    clock.advance(14 * 60)
    await economics.before_cycle()
    assert settlement.latest(["2026-06-01"]).empty  # looked at every 15 minutes
    clock.advance(60)
    await economics.before_cycle()
    rows = settlement.latest(["2026-06-01"]).set_index("customer")
    # h01: 96 x 0.5 (interval 10 estimated) at 0.30; h02: 96 x 0.3 sold at 0.10
    assert rows.money_cents.to_dict() == {"h01": 1440, "h02": -288}
    state = settlement.state(DAY)
    assert state.waiting["h03"] == "m-h03: no readings on 2026-06-01"
    assert set(state.basis) == {"h01", "h02"}

    readings.ingest(
        _frame("m-h01", "import", 0.9, STARTS[[10]]),
        meters=METERS,
        source="test",
        received_at=T1 + timedelta(hours=2),
    )
    await VeeService("demo", store, sorted(METERS), cfg, clock=clock).pump()  # on its restart
    clock.advance(15 * 60)
    await economics.before_cycle()
    rows = settlement.revisions(["2026-06-01"])
    assert rows[["customer", "revision"]].values.tolist() == [["h01", 1], ["h01", 2], ["h02", 1]]
    # 0.4 kWh more at 0.30
    assert rows.difference_cents.tolist() == [1440, 12, -288]


def test_a_day_vee_has_not_seen_waits_and_says_so(store: Store) -> None:
    site = load_site("demo")
    MeterReadings(store).ingest(
        _frame("m-h01", "import", 0.5, STARTS), meters=METERS, source="test", received_at=T1
    )
    economics = ProsumerEconomics(
        site,
        clock=SimClock(T1),
        bus=InProcessBus(),
        store=store,
        audit=AuditLog(store, b"k" * 32),
    )
    state = economics.settlement.state(DAY)
    assert state.waiting["h01"] == (
        "m-h01 import: not validated yet (openmeg vee run, or the automatic VEE)"
    )
    assert state.basis == {}
