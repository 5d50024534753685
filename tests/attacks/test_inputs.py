"""Attacks on the MEG's inputs: NaN, infinities and absurd values on every bus input the platform
subscribes to (prices, points, registers, readings, stored readings, alarms, peaks, price
signals, trading accounts, the mode), on the in-process bus (messages built past their models'
checks, as a faulty component could) and on a real Mosquitto (raw JSON from a client that may
publish everywhere); an absurd register jump; a retained NaN price across a restart. Each time
the MEG keeps running (its cycles advance), its state is as it was (the refusal alarms aside),
and the refusals are counted."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from pydantic import BaseModel

from openmeg.app import LiveMeg
from openmeg.core.bus import InProcessBus
from openmeg.core.edge import REFUSED_CODE
from openmeg.core.messages import (
    AlarmMessage,
    BusMessage,
    IntervalReading,
    MarketPrices,
    MeterReadings,
    ModeChange,
    PeakDemand,
    PointUpdate,
    PriceChange,
    PriceSignal,
    TradingAccounts,
    alarm_topic,
    market_prices_topic,
    mode_topic,
    peak_topic,
    point_topic,
    price_topic,
    readings_topic,
    stored_readings_topic,
    trading_accounts_topic,
)
from openmeg.core.store import Store, sqlite_url
from openmeg.live import connect_buses
from tests.field_harness import LiveSite, live_site
from tests.services import TEST_USER, Broker

T0 = datetime(2026, 6, 1, 12, 3, tzinfo=UTC)  # no interval closes in the steps of a test
S = "demo"
METER = "m-h01"
NAN, INF = float("nan"), float("inf")


def _bad(cls: type[BusMessage], **fields: Any) -> BusMessage:
    """A message built past its model's checks."""
    return cls.model_construct(**fields, v=1)  # type: ignore[union-attr]


def _inputs() -> list[tuple[str, BusMessage]]:
    """``(topic, message)``: a NaN or an infinity on every input the platform subscribes to."""
    ts = T0
    prices = [PriceChange.model_construct(effective_from=ts, buy=NAN, sell=0.1)]
    reading = [IntervalReading.model_construct(interval_start=ts, value_kwh=INF)]

    def point(device: str, name: str, value: float, domain: str) -> tuple[str, BusMessage]:
        msg = _bad(
            PointUpdate,
            type="point",
            site=S,
            device=device,
            name=name,
            value=value,
            unit="kW",
            ts=ts,
            quality="good",
        )
        return point_topic(S, device, name, domain=domain), msg

    return [
        (
            market_prices_topic(S),
            _bad(MarketPrices, type="market_prices", site=S, ts=ts, changes=prices),
        ),
        point("pv-h01", "p_kw", NAN, "der"),
        point("sensor-chp1", "temperature_c", INF, "distribution"),
        point(METER, "import_kwh", INF, "customer"),
        point(METER, "export_kwh", -INF, "customer"),
        point("bess-h01", "energy_kwh", NAN, "der"),
        point("cycle", "duration_ms", NAN, "operation"),
        (
            readings_topic(S, METER),
            _bad(
                MeterReadings,
                type="readings",
                site=S,
                meter=METER,
                channel="import",
                readings=reading,
            ),
        ),
        (
            stored_readings_topic(S, METER),
            _bad(
                MeterReadings,
                type="readings",
                site=S,
                meter=METER,
                channel="import",
                readings=reading,
            ),
        ),
        (
            alarm_topic(S, "pcc"),
            _bad(
                AlarmMessage,
                type="alarm",
                site=S,
                source="pcc",
                code="forged",
                text="<img src=x onerror=alert(1)>" * 1000,
                active=True,
                ts=ts,
                severity="critical",
            ),
        ),
        (
            peak_topic(S, "h01"),
            _bad(
                PeakDemand,
                type="peak",
                site=S,
                owner="h01",
                building="b1",
                month="2026-06",
                peak_kw=INF,
                hour_start=ts,
            ),
        ),
        (
            price_topic(S, "h01"),
            _bad(
                PriceSignal,
                type="price",
                site=S,
                customer="h01",
                ts=ts,
                buy_per_kwh=NAN,
                sell_per_kwh=-INF,
                tariff="t",
                period="p",
            ),
        ),
        (
            trading_accounts_topic(S, "h01"),
            _bad(
                TradingAccounts,
                type="trading_accounts",
                site=S,
                customer="h01",
                ts=ts,
                since=ts,
                purchases=NAN,
                sales=INF,
                incentives=0.0,
                net=NAN,
            ),
        ),
        (mode_topic(S), _bad(ModeChange, type="mode", site=S, mode="nan", ts=ts)),
    ]


INPUTS = _inputs()
ABSURD: list[tuple[str, BusMessage]] = [  # well-formed, but no site of the MEG's would send them
    (
        market_prices_topic(S),
        MarketPrices(site=S, ts=T0, changes=[PriceChange(effective_from=T0, buy=9.99, sell=-9.99)]),
    ),
    (
        point_topic(S, "m-ghost", "import_kwh", domain="customer"),
        PointUpdate(site=S, device="m-ghost", name="import_kwh", value=5.0, unit="kWh", ts=T0),
    ),
    (
        alarm_topic(S, "intruder"),
        AlarmMessage(site=S, source="intruder", code="forged", text="x", active=True, ts=T0),
    ),
]


def _wire(msg: BusMessage) -> bytes:
    """The JSON a client would send: NaN and infinities as JSON's non-standard literals."""

    def plain(value: Any) -> Any:
        if isinstance(value, list):
            return [plain(v) for v in value]
        if isinstance(value, BaseModel):
            return {k: plain(v) for k, v in value.__dict__.items()}
        if isinstance(value, datetime):
            return value.isoformat()
        return value

    return json.dumps(plain(msg)).encode()


def _state(meg: LiveMeg) -> dict[str, object]:
    """What an injected input would change: mode, prices, accounts, readings, alarms, peaks."""
    day = T0 - timedelta(days=1)
    return {
        "mode": meg.status.mode,
        "scada_mode": meg.scada.state.mode,
        "prices": [meg.book.price_at(T0 + timedelta(minutes=m)) for m in (0, 5, 20)],
        "last_price_change": meg.book.last_change(),
        "settlement": meg.local_market.settlement(day, T0 + timedelta(days=1)).to_dict("list"),
        "readings": meg.readings.count(),
        "registers": meg.readings.registers(METER, "import", day, T0 + timedelta(days=1)).tolist(),
        "alarms": sorted(
            (a.source, a.code, a.text) for a in meg.scada.alarms() if a.code != REFUSED_CODE
        ),
        "peaks": dict(meg.peaks.peaks),
        "pv": meg.scada.state.values.get("pv-h01", {}).get("p_kw"),
    }


async def _settle(live: LiveSite, seconds: float = 0.0) -> None:
    """Cycles until what was published has arrived (over a broker: ``seconds`` of real time)."""
    deadline = time.monotonic() + seconds
    await live.step()
    while time.monotonic() < deadline:
        await asyncio.sleep(0.2)
        await live.step()


async def test_nan_and_infinities_on_every_input_of_the_in_process_bus_change_nothing(
    store: Store,
) -> None:
    bus = InProcessBus()
    live = await live_site(bus, store, start=T0)
    try:
        await live.step(3)
        before, cycles = _state(live.meg), live.meg.status.cycles
        assert before["prices"][0] is not None and before["pv"] is not None
        for topic, msg in INPUTS + ABSURD:
            await bus.publish(topic, msg)  # past every component's scope: a faulty one
        await live.step(3)
        assert live.meg.status.cycles == cycles + 3
        after = _state(live.meg)
        pv = after.pop("pv")
        assert pv is not None and pv.value == pv.value  # a number, never the NaN sent
        before.pop("pv")  # (the plant moved on meanwhile)
        assert after == before
        edge = live.meg.edge
        refused = {s for s, _ in edge.counts}
        assert refused >= {"price_book", "head_end", "historian", "scada", "prosumer_economics"}
        assert live.meg.figures()["bus_inputs_refused"] == edge.total >= len(INPUTS + ABSURD)
        assert edge.counts[("price_book", "price_out_of_bounds")] == 1  # 9.99 / -9.99
        assert edge.counts[("head_end", "unknown_meter")] == 1
        assert edge.counts[("scada", "unknown_source")] == 1
        assert live.meg.ingest.refused >= 1  # the MDMS refused the infinite reading itself
        raised = {a.source for a in live.meg.scada.alarms() if a.code == REFUSED_CODE}
        assert raised >= {"price_book", "head_end", "scada"}
    finally:
        await live.stop()
        await bus.close()


async def test_an_absurd_register_jump_reaches_no_reading_and_no_account(store: Store) -> None:
    bus = InProcessBus()
    start = datetime(2026, 6, 1, 11, 59, tzinfo=UTC)
    live = await live_site(bus, store, start=start, step_s=60.0, persist_every_s=600.0)
    try:
        await live.step(6)  # 12:04: the 12:00 boundary was seen
        jump = PointUpdate(
            site=S, device=METER, name="import_kwh", value=49_589.67, unit="kWh", ts=T0
        )
        await bus.publish(point_topic(S, METER, "import_kwh", domain="customer"), jump)
        await live.step(13)  # to 12:17: the 12:00 interval closed and was settled
        meg = live.meg
        assert meg.edge.counts[("head_end", "register_jump")] == 1
        t12 = datetime(2026, 6, 1, 12, tzinfo=UTC)
        stored = meg.readings.long_frame(
            [m.id for m in meg.site.meters], t12, t12 + timedelta(minutes=15)
        )
        assert METER not in set(stored["meter"])  # its interval left unreported, not 49,589 kWh
        assert {"m-h02", "m-h03"} <= set(stored["meter"])
        assert stored["value_kwh"].max() < 100.0
        settled = meg.local_market.settlement(t12)
        assert not settled.empty and "h01" not in set(settled["customer"])
        assert settled["money"].abs().max() < 100.0
        registers = meg.readings.registers(METER, "import", t12, t12 + timedelta(minutes=30))
        assert registers.max() < 49_000.0  # the boundaries hold what the meter measured
    finally:
        await live.stop()
        await bus.close()


def _raw_client(broker: Broker) -> mqtt.Client:
    raw = mqtt.Client(CallbackAPIVersion.VERSION2)
    raw.username_pw_set(TEST_USER, broker.test_password)
    raw.connect(broker.host, broker.port)
    raw.loop_start()
    return raw


@pytest.mark.slow
async def test_nan_and_infinities_over_mqtt_are_refused_and_change_nothing(
    broker: Broker, tmp_path: Path
) -> None:
    store = Store(sqlite_url(tmp_path / "meg.db"))
    store.create_schema()
    buses, _ = await connect_buses(S, broker.access())  # each service as itself
    live = await live_site(None, store, start=T0, buses=buses)
    raw = _raw_client(broker)
    try:
        deadline = time.monotonic() + 20
        while live.meg.book.price_at(T0) is None:  # the market's prices came round the broker
            assert time.monotonic() < deadline, live.meg.edge.last
            await _settle(live, 0.5)
        await _settle(live, 1.0)
        before, cycles = _state(live.meg), live.meg.status.cycles
        payloads = [(t, _wire(m)) for t, m in INPUTS] + [
            (market_prices_topic(S), b'{"v":1,"type":"market_prices","changes":[{"buy":1e400}]}'),
            (point_topic(S, METER, "import_kwh", domain="customer"), b"\xff\xfe not json"),
            (mode_topic(S), b"[" * 100_000),
        ]
        for topic, payload in payloads + [(t, _wire(m)) for t, m in ABSURD]:
            raw.publish(topic, payload, qos=1).wait_for_publish(10)
        await _settle(live, 3.0)
        assert live.meg.status.cycles > cycles
        after = _state(live.meg)
        pv = after.pop("pv")
        assert pv is not None and pv.value == pv.value
        before.pop("pv")
        assert after == before
        figures = live.meg.figures()
        # each component's connection that subscribes to a topic refused what came on it
        assert figures["bus_messages_undecodable"] >= len(payloads)
        assert live.meg.edge.of("mqtt") == figures["bus_messages_undecodable"]
        assert ("mqtt", REFUSED_CODE) in {(a.source, a.code) for a in live.meg.scada.alarms()}
        counts = live.meg.edge.counts  # what decoded but no site of the MEG's would send
        assert counts[("price_book", "price_out_of_bounds")] == 1
        assert counts[("head_end", "unknown_meter")] == 1
        assert counts[("scada", "unknown_source")] == 1
    finally:
        raw.loop_stop()
        raw.disconnect()
        with contextlib.suppress(Exception):
            await live.stop()
        await buses.close()
        store.close()


@pytest.mark.slow
async def test_a_retained_nan_price_does_not_stop_the_meg_at_a_restart(
    broker: Broker, tmp_path: Path
) -> None:
    store = Store(sqlite_url(tmp_path / "meg.db"))
    store.create_schema()
    topic = market_prices_topic(S)
    nan_price = b'{"v":1,"type":"market_prices","site":"demo","ts":"2026-06-01T12:03:00Z",'
    nan_price += b'"changes":[{"effective_from":"2026-06-01T12:00:00Z","buy":NaN,"sell":0.1}]}'
    raw = _raw_client(broker)
    raw.publish(topic, nan_price, qos=1, retain=True).wait_for_publish(10)
    try:
        for start in (T0, T0 + timedelta(minutes=5)):  # a start, then a restart
            buses, _ = await connect_buses(S, broker.access())
            live = await live_site(None, store, start=start, buses=buses)
            try:
                runner = asyncio.create_task(live.meg.run(asyncio.Event(), max_cycles=20))
                await asyncio.wait_for(runner, 60)  # it ran its cycles: nothing ended it
                assert live.meg.status.cycles >= 20
                assert live.meg.edge.of("mqtt") >= 1  # the retained price came, and was refused
                book = live.meg.book.schedule(start - timedelta(days=1), start + timedelta(days=1))
                assert np.isfinite(book.buy).all() and np.isfinite(book.sell).all()
            finally:
                with contextlib.suppress(Exception):
                    await live.stop()
                await buses.close()
    finally:
        raw.publish(topic, b"", qos=1, retain=True).wait_for_publish(10)  # clear it
        raw.loop_stop()
        raw.disconnect()
        store.close()
