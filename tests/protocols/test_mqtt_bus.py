"""The MQTT bus's reader against a real broker: nothing a message contains stops it; what does
not decode is counted, never delivered; a component logs in over TLS with its credentials."""

from datetime import UTC, datetime

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from openmeg.core.messages import ModeChange, mode_topic
from tests.services import TEST_USER, Broker

T0 = datetime(2026, 6, 1, tzinfo=UTC)
GARBAGE = [
    b"\xff\xfe\x00 not utf-8",
    b"not json",
    b"[" * 100_000,
    b'{"v": 1, "type": "mode", "site": "demo", "mode": "grid", "ts": "0000-99-99"}',
    b'{"v": 1, "type": "point", "value": NaN}',
    b"",
    b'{"v": 2, "type": "mode"}',
]


async def test_the_reader_counts_what_does_not_decode_and_goes_on(broker: Broker) -> None:
    bus = await broker.bus("operation", tls=True).connect()
    sub = await bus.subscribe(mode_topic("demo"))
    raw = mqtt.Client(CallbackAPIVersion.VERSION2)
    raw.username_pw_set(TEST_USER, broker.test_password)
    raw.connect(broker.host, broker.port)
    raw.loop_start()
    try:
        for payload in GARBAGE:
            raw.publish(mode_topic("demo"), payload, qos=1).wait_for_publish(10)
        good = ModeChange(site="demo", mode="island", ts=T0)
        await bus.publish(mode_topic("demo"), good)
        topic, got = await sub.get(timeout=10)
    finally:
        raw.loop_stop()
        raw.disconnect()
        await bus.close()
    assert (topic, got) == (mode_topic("demo"), good)
    assert bus.rejected == len(GARBAGE)
