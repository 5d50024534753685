"""Each service refuses at its own edge what it cannot take (not a number, another site, an
unknown device, meter or alarm source, a price beyond the site's bound, a register jump, a
point on another's topic), counts it by kind, keeps its state as it was, and goes on to take
the next good message."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from openmeg.api.stream import StreamHub
from openmeg.core.audit import AuditLog
from openmeg.core.bus import InProcessBus
from openmeg.core.clock import SimClock
from openmeg.core.edge import Edge
from openmeg.core.messages import (
    AlarmMessage,
    IntervalReading,
    MarketPrices,
    MeterReadings,
    PointUpdate,
    PriceChange,
    alarm_topic,
    market_prices_topic,
    point_topic,
    readings_topic,
)
from openmeg.core.site import load_site
from openmeg.core.store import Store
from openmeg.customer.price_book import BusPriceSync, PriceBook
from openmeg.distribution.metering import MeteringService
from openmeg.operation.historian import Historian
from openmeg.operation.process_image import ImageKeeper
from openmeg.operation.scada import DerManagementServer
from openmeg.provider.peak_watch import PeakWatch
from tests.keys import audit_key

T0 = datetime(2026, 6, 1, 12, tzinfo=UTC)
S = "demo"
NAN = float("nan")


def _point(device: str, name: str, value: float | None, **kw: Any) -> PointUpdate:
    return PointUpdate(site=S, device=device, name=name, value=value, unit="kW", ts=T0, **kw)


def _bad_point(device: str, name: str, value: float) -> PointUpdate:
    """A point built past its model's checks (as a faulty component could)."""
    return PointUpdate.model_construct(
        site=S, device=device, name=name, value=value, unit="kW", ts=T0, v=1, type="point"
    )


def _alarms_of(bus_sub: Any) -> list[AlarmMessage]:
    out = []
    while bus_sub.pending():
        _, msg = bus_sub.get_nowait()
        if isinstance(msg, AlarmMessage):
            out.append(msg)
    return out


async def test_the_price_book_keeps_only_this_markets_prices_within_the_bound(
    store: Store,
) -> None:
    bus = InProcessBus()
    edge = Edge(S, bus, SimClock(T0))
    alarms = await bus.subscribe(alarm_topic(S, "+"))
    book = PriceBook(store, S, max_abs_per_kwh=5.0)
    sync = BusPriceSync(book, bus, edge.gate("price_book"))
    await sync.start()
    topic = market_prices_topic(S)

    def prices(buy: float, sell: float, site: str = S) -> MarketPrices:
        return MarketPrices(
            site=site, ts=T0, changes=[PriceChange(effective_from=T0, buy=buy, sell=sell)]
        )

    for msg in (
        prices(9.99, -9.99),  # the injection of the issue: a valid message, beyond the bound
        prices(0.2, 0.1, site="elsewhere"),
        MarketPrices.model_construct(
            site=S,
            ts=T0,
            changes=[PriceChange.model_construct(effective_from=T0, buy=NAN, sell=0.1)],
            v=1,
            type="market_prices",
        ),
        prices(0.21, 0.11),
    ):
        await bus.publish(topic, msg)
    assert await sync.pump(T0) == 1
    assert book.price_at(T0) == (0.21, 0.11)
    assert edge.counts == {
        ("price_book", "price_out_of_bounds"): 1,
        ("price_book", "other_site"): 1,
        ("price_book", "changes.0.buy:finite_number"): 1,
    }
    [alarm] = _alarms_of(alarms)
    assert alarm.source == "price_book" and "beyond the site's bound of 5" in alarm.text
    await sync.stop()


async def test_the_head_end_refuses_unknown_meters_and_register_jumps_from_the_bus() -> None:
    bus = InProcessBus()
    clock = SimClock(T0)
    edge = Edge(S, bus, clock)
    reads: list[Any] = []

    async def record(rows: Any) -> None:
        reads.extend(rows)

    metering = MeteringService(
        S,
        bus,
        clock,
        meters={"m-h01"},
        device_meters=set(),
        record_registers=record,
        max_kw=60.0,
        known={"m-h01", "ev1"},
        gate=edge.gate("head_end"),
    )
    await metering.start()

    async def register(device: str, value: float, at: datetime) -> None:
        msg = PointUpdate(site=S, device=device, name="import_kwh", value=value, unit="kWh", ts=at)
        await bus.publish(point_topic(S, device, "import_kwh", domain="customer"), msg)

    await register("m-h01", 10.0, T0)
    assert await metering.pump() == []
    clock.advance(60.0)
    await register("m-h01", 49_589.67, clock.now())  # the injection of the issue
    await register("m-h99", 1.0, clock.now())
    await register("ev1", 5.0, clock.now())  # a device's register that is no meter's: passed
    await register("m-h01", 10.5, clock.now())
    assert await metering.pump() == []
    assert edge.counts == {("head_end", "register_jump"): 1, ("head_end", "unknown_meter"): 1}
    clock.advance(14 * 60.0)  # 12:15: the interval it was refused in is not reported
    assert await metering.pump() == []
    assert [r[3] for r in reads] == [10.0, 10.5]  # at 12:00 and 12:15: as measured
    await metering.stop()


async def test_points_of_unknown_devices_or_not_numbers_reach_no_picture(store: Store) -> None:
    bus = InProcessBus()
    edge = Edge(S, bus, SimClock(T0))
    known = {"pv1", "sensor-chp1"}.__contains__
    images = ImageKeeper(S, bus, known=known, gate=edge.gate("process_image"))
    historian = Historian(S, bus, store, known=known, gate=edge.gate("historian"))
    scada = DerManagementServer(
        S, bus, store, audit=AuditLog(store, audit_key()), known=known, gate=edge.gate("scada")
    )
    for service in (images, historian, scada):
        await service.start()
    good = _point("pv1", "p_kw", 3.0)
    attacks = [
        (point_topic(S, "pv1", "p_kw"), _bad_point("pv1", "p_kw", NAN)),
        (point_topic(S, "pv1", "p_kw"), _bad_point("pv1", "p_kw", float("inf"))),
        (point_topic(S, "ghost", "p_kw"), _point("ghost", "p_kw", 1.0)),
        (point_topic(S, "sensor-chp1", "temperature_c"), good),  # on another point's topic
    ]
    for topic, msg in attacks:
        await bus.publish(topic, msg)
    await bus.publish(point_topic(S, "pv1", "p_kw"), good)
    assert images.pump() == 1
    assert await historian.pump() == 1
    await scada.pump()  # (the points, and the refusal alarms of the three services)
    assert sorted(a.source for a in scada.alarms()) == ["historian", "process_image", "scada"]
    assert set(images.samples) == {"pv1/p_kw"} and images.samples["pv1/p_kw"].value == 3.0
    assert [p.value for p in historian._buffer] == [3.0]
    assert scada.snapshot()["devices"] == {"pv1": {"p_kw": 3.0}}
    for service in ("process_image", "historian", "scada"):
        assert {k: n for (s, k), n in edge.counts.items() if s == service} == {
            "value:finite_number": 2,
            "unknown_device": 1,
            "wrong_topic": 1,
        }, service
    await historian.stop()
    await scada.stop()
    await images.stop()


async def test_the_scada_takes_alarms_only_from_known_sources_on_their_own_topics(
    store: Store,
) -> None:
    bus = InProcessBus()
    edge = Edge(S, bus, SimClock(T0))
    scada = DerManagementServer(
        S,
        bus,
        store,
        audit=AuditLog(store, audit_key()),
        known={"pv1"}.__contains__,
        gate=edge.gate("scada"),
    )
    await scada.start()

    def alarm(source: str, text: str = "hot") -> AlarmMessage:
        return AlarmMessage(site=S, source=source, code="c", text=text, active=True, ts=T0)

    await bus.publish(alarm_topic(S, "intruder"), alarm("intruder"))
    await bus.publish(alarm_topic(S, "flisr"), alarm("pv1"))  # pv1's alarm on another topic
    await bus.publish(
        alarm_topic(S, "pv1"),
        AlarmMessage.model_construct(
            site=S,
            source="pv1",
            code="c",
            text="<img src=x onerror=alert(1)>" * 100,
            active=True,
            ts=T0,
            severity="warning",
            v=1,
            type="alarm",
        ),
    )
    await bus.publish(alarm_topic(S, "pv1"), alarm("pv1"))
    await bus.publish(alarm_topic(S, "time"), alarm("time", "the clock is off"))
    await scada.pump()  # (and its own refusal alarm, from a source of the platform's)
    assert sorted(a.key for a in scada.alarms()) == ["pv1/c", "scada/bus_input_refused", "time/c"]
    assert {k: n for (_, k), n in edge.counts.items()} == {
        "unknown_source": 1,
        "wrong_topic": 1,
        "text:string_too_long": 1,
    }
    await scada.stop()


async def test_peak_watch_refuses_readings_no_meter_can_measure() -> None:
    site = load_site("demo")
    bus = InProcessBus()
    edge = Edge(S, bus, SimClock(T0))
    watch = PeakWatch(site, bus, edge.gate("peak_watch"))
    await watch.start()
    meter = next(
        m.id for m in site.meters for c in site.customers if c.id == m.customer and c.building
    )
    top = site.meter_max_kw() * 0.25

    def readings(kwh: float) -> MeterReadings:
        return MeterReadings(
            site=S,
            meter=meter,
            channel="import",
            readings=[
                IntervalReading(interval_start=T0 + timedelta(minutes=15 * i), value_kwh=kwh)
                for i in range(4)
            ],
        )

    await bus.publish(readings_topic(S, meter), readings(top * 2))
    await bus.publish(readings_topic(S, meter), readings(1.0))
    assert await watch.pump() == 1
    assert [kw for kw, _ in watch.peaks.values()] == [pytest.approx(4.0)]
    assert edge.counts == {("peak_watch", "reading_too_large"): 1}
    await watch.stop()


async def test_the_stream_hub_forwards_only_what_passes_its_edge() -> None:
    bus = InProcessBus()
    edge = Edge(S, bus, SimClock(T0))
    hub = StreamHub(S, bus, gate=edge.gate("stream"))
    assert await hub._admit("t", _bad_point("pv1", "p_kw", NAN)) is None
    other = PointUpdate(site="x", device="pv1", name="p_kw", value=1.0, unit="kW", ts=T0)
    assert await hub._admit("t", other) is None
    good = _point("pv1", "p_kw", 1.0)
    assert await hub._admit("t", good) == good
    assert edge.counts == {("stream", "value:finite_number"): 1, ("stream", "other_site"): 1}
