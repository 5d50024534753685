"""Attacks on the bus: anonymous and wrongly authenticated clients, TLS without the site CA or
to a host name its certificate does not name, and authenticated components publishing outside
their topics, against a real Mosquitto from the generated configuration and a running MEG whose
services each connect as their own component. Each is refused and changes nothing."""

from __future__ import annotations

import asyncio
import contextlib
import time
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from openmeg.app import LiveMeg
from openmeg.core.bus import InProcessBus, Subscription
from openmeg.core.errors import BusError
from openmeg.core.messages import (
    AlarmMessage,
    BusMessage,
    CommandMessage,
    DeviceAdd,
    IntervalReading,
    MarketPrices,
    MeterReadings,
    PointUpdate,
    PriceChange,
    alarm_topic,
    command_topic,
    device_add_topic,
    market_prices_topic,
    point_topic,
    readings_topic,
)
from openmeg.core.scoped_bus import ScopedBus
from openmeg.core.store import Store, sqlite_url
from openmeg.live import connect_buses
from openmeg.protocols.durable import DurableSubscriber
from openmeg.protocols.mqtt import MqttBus
from openmeg.protocols.tls import init_site_certificates
from tests.field_harness import live_site
from tests.services import TEST_USER, Broker

T0 = datetime(2026, 6, 1, 12, 3, tzinfo=UTC)  # no interval closes in the steps of a test
S = "demo"
METER = "m-h01"


def _attacks() -> list[tuple[str, str, BusMessage]]:
    """``(component, topic, message)``: publishes outside the component's topics."""
    switch = CommandMessage(site=S, device="pcc", name="switch_command", value=1.0, ts=T0)
    prices = MarketPrices(
        site=S, ts=T0, changes=[PriceChange(effective_from=T0, buy=9.99, sell=-9.99)]
    )

    def register(value: float) -> PointUpdate:
        return PointUpdate(site=S, device=METER, name="import_kwh", value=value, unit="kWh", ts=T0)

    readings = MeterReadings(
        site=S,
        meter=METER,
        channel="import",
        readings=[IntervalReading(interval_start=T0 - timedelta(minutes=15), value_kwh=49589.67)],
    )
    alarm = AlarmMessage(
        site=S, source="pcc", code="forged", text="<img src=x>", active=True, ts=T0
    )
    add = DeviceAdd(site=S, address="127.0.0.1:5432:1", ts=T0)
    registers = point_topic(S, METER, "import_kwh", domain="customer")
    return [
        ("market", command_topic(S, "pcc", "switch_command"), switch),
        ("operator", market_prices_topic(S), prices),
        ("operator", registers, register(1e6)),
        ("market", registers, register(2e6)),
        ("head-end", registers, register(3e6)),
        ("feeder", readings_topic(S, METER), readings),
        ("operator", alarm_topic(S, "pcc"), alarm),
        ("head-end", device_add_topic(S), add),
        ("provider", command_topic(S, "pcc", "switch_command"), switch),
    ]


ATTACKS = _attacks()


def _state(meg: LiveMeg) -> dict[str, object]:
    """What an injected message would change: mode, prices, accounts, readings, devices."""
    day = T0 - timedelta(days=1)
    return {
        "mode": meg.status.mode,
        "prices": [meg.book.price_at(T0 + timedelta(minutes=m)) for m in (0, 5, 20)],
        "last_price_change": meg.book.last_change(),
        "settlement": meg.local_market.settlement(day).to_dict("list"),
        "readings": meg.readings.count(),
        "registers": meg.readings.registers(METER, "import", day, T0 + timedelta(days=1)).tolist(),
        "devices": sorted(meg.feeder.links),
        "alarms": sorted((a.source, a.code) for a in meg.scada.alarms()),
        "commands": meg.status.commands,
    }


async def test_an_anonymous_client_is_refused_at_connect(broker: Broker) -> None:
    with pytest.raises(BusError, match="refused an anonymous client: bad user name or password"):
        await MqttBus(broker.host, broker.port).connect()


async def test_a_wrong_password_is_refused_and_says_what_to_do(broker: Broker) -> None:
    login = replace(broker.login("feeder"), password="guessed")
    with pytest.raises(BusError) as err:
        await MqttBus(broker.host, broker.port, login=login).connect()
    assert "refused openmeg-demo-feeder: bad user name or password; run `openmeg mqtt init`" in (
        str(err.value)
    )


def test_the_durable_subscriber_is_refused_with_a_wrong_password(broker: Broker) -> None:
    login = replace(broker.login("mdms", tls=True), password="guessed")
    sub = DurableSubscriber(
        broker.host, broker.tls_port, client_id="openmeg-mdms-x", topic="meg/demo/#", login=login
    )
    try:
        with pytest.raises(BusError, match="refused openmeg-demo-mdms: bad user name or password"):
            for _ in range(100):
                sub.poll(0.1)
        assert not sub.connected
    finally:
        sub.close()
    good = DurableSubscriber(
        broker.host,
        broker.tls_port,
        client_id="openmeg-mdms-x",
        topic="meg/demo/#",
        login=broker.login("mdms", tls=True),
    )
    try:
        for _ in range(100):
            if good.connected:
                break
            good.poll(0.1)
        assert good.connected
    finally:
        good.close()


async def test_tls_without_the_site_ca_is_refused(broker: Broker, tmp_path: Path) -> None:
    other_ca = init_site_certificates(tmp_path, "elsewhere")[0]
    login = replace(broker.login("feeder"), ca_file=other_ca)
    with pytest.raises(BusError, match=r"TLS with the broker .* failed: .*certificate verify"):
        await MqttBus(broker.host, broker.tls_port, login=login).connect()
    plain_to_tls = broker.login("feeder")  # no TLS at all on the TLS port
    with pytest.raises(BusError):
        await MqttBus(broker.host, broker.tls_port, login=plain_to_tls).connect()


async def test_tls_to_a_host_name_the_certificate_does_not_name_is_refused(
    broker: Broker,
) -> None:
    login = broker.login("feeder", tls=True)
    name_refused = r"TLS with the broker at 127\.0\.0\.2.*failed: .*127\.0\.0\.2"
    with pytest.raises(BusError, match=name_refused):
        await MqttBus("127.0.0.2", broker.other_tls_port, login=login).connect()
    ok = await MqttBus(broker.host, broker.tls_port, login=login).connect()  # the right name
    await ok.close()


@pytest.mark.parametrize(("component", "topic", "message"), ATTACKS)
async def test_the_in_process_bus_refuses_the_same_publishes(
    component: str, topic: str, message: BusMessage
) -> None:
    inner = InProcessBus()
    everything = await inner.subscribe("meg/#")
    with pytest.raises(BusError, match=f"openmeg-demo-{component} may not publish on '{topic}'"):
        await ScopedBus(inner, site=S, name=component).publish(topic, message)
    assert everything.pending() == 0
    await inner.close()


async def _until(sub: Subscription, topic: str, seen: list[str]) -> None:
    """Every topic arriving on ``sub`` into ``seen``, until ``topic`` came."""
    while True:
        got, _ = await sub.get(timeout=10)
        seen.append(got)
        if got == topic:
            return


@pytest.mark.slow
async def test_components_publishing_outside_their_topics_reach_nobody_and_change_nothing(
    broker: Broker, tmp_path: Path
) -> None:
    store = Store(sqlite_url(tmp_path / "meg.db"))
    store.create_schema()
    buses, _ = await connect_buses(S, broker.access(tls=True))  # each service as itself
    live = await live_site(None, store, start=T0, buses=buses)
    watcher = await broker.bus(TEST_USER).connect()
    attackers = {c: await broker.bus(c).connect() for c in {c for c, _, _ in ATTACKS}}
    try:
        await live.step(3)
        await asyncio.sleep(1.0)  # what the services published has travelled the broker
        await live.step(2)
        before = _state(live.meg)
        assert before["mode"] == "grid" and before["prices"][0] is not None
        seen: list[str] = []
        sub = await watcher.subscribe("meg/demo/#")
        for component, topic, message in ATTACKS:
            await attackers[component].publish(topic, message)  # acknowledged, then dropped
        marker = alarm_topic(S, "marker")
        await attackers["market"].publish(
            marker,
            AlarmMessage(site=S, source="marker", code="m", text="", active=False, ts=T0),
        )
        await asyncio.wait_for(_until(sub, marker, seen), 20)
        attacked = {t for _, t, _ in ATTACKS}
        assert not attacked & set(seen), sorted(attacked & set(seen))
        deadline = time.monotonic() + 2.0
        while time.monotonic() < deadline:  # the MEG would have taken anything that arrived
            await live.step()
            await asyncio.sleep(0.2)
        after = _state(live.meg)
        after["alarms"] = [a for a in after["alarms"] if a != ("marker", "m")]  # type: ignore[attr-defined]
        assert after == before
        assert live.meg.status.mode == "grid"
    finally:
        for bus in (watcher, *attackers.values()):
            await bus.close()
        with contextlib.suppress(Exception):
            await live.stop()
        await buses.close()
        store.close()
