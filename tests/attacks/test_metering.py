"""Attacks on the metering path: readings of unknown meters, non-finite or future values,
malformed columns, a redelivered batch. Each is refused alone with a clear reason (an event),
nothing of it is stored, and the ingest goes on storing the good messages around it."""

from __future__ import annotations

import json
import time
import uuid
from datetime import UTC, datetime, timedelta

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from openmeg.core.messages import ReadingsBatch, batch_readings_topic, encode, readings_topic
from openmeg.core.store import Store
from openmeg.operation.mdms.ingest import IngestService
from openmeg.operation.mdms.store import MeterReadings as Readings
from openmeg.protocols.durable import DurableSubscriber
from tests.mosquitto import mosquitto

T0 = datetime(2026, 2, 2, tzinfo=UTC)
NOW = T0 + timedelta(days=3)


def _good(k: int) -> bytes:
    return encode(
        ReadingsBatch(
            site="demo",
            meter=["m-h01", "m-h02"],
            channel=["import", "import"],
            interval_start=[T0 + k * timedelta(minutes=15)] * 2,
            value_kwh=[0.5, 0.25],
        )
    )


def _raw(**fields: object) -> bytes:
    body = {
        "v": 1,
        "type": "readings_batch",
        "site": "demo",
        "meter": ["m-h01"],
        "channel": ["import"],
        "interval_start": [T0.isoformat()],
        "value_kwh": [1.0],
    }
    body.update(fields)
    return json.dumps(body).encode()


ATTACKS = {
    "unknown meter": (_raw(meter=["m-evil"]), "unknown meter 'm-evil'"),
    "NaN": (
        _raw(value_kwh=[1.0]).replace(b"[1.0]", b"[NaN]"),
        "value_kwh.0: Input should be a finite number",
    ),
    "infinite": (
        _raw().replace(b"[1.0]", b"[1e400]"),
        "value_kwh.0: Input should be a finite number",
    ),
    "negative": (_raw(value_kwh=[-2.0]), "value_kwh.0: Input should be greater than or equal"),
    "in the future": (
        _raw(interval_start=[(NOW + timedelta(days=30)).isoformat()]),
        "is in the future",
    ),
    "columns of unequal length": (_raw(value_kwh=[1.0, 2.0]), "differ in length"),
    "another site": (_raw(site="other"), "not a readings message of this site"),
    "not a channel": (_raw(channel=["gas"]), "channel"),
}


@pytest.mark.parametrize("attack", sorted(ATTACKS))
def test_a_bad_readings_message_is_refused_alone(store: Store, attack: str) -> None:
    payload, reason = ATTACKS[attack]
    ingest = IngestService("demo", None, store, {"m-h01", "m-h02"})
    items = [("good-0", _good(0)), ("attack", payload), ("good-1", _good(1))]
    ingest.store_batch(items, NOW)  # type: ignore[arg-type]
    readings = Readings(store)
    assert readings.count() == 4  # the good messages around it are stored
    assert readings.series("m-h01", "import", T0, NOW).tolist() == [0.5, 0.5]
    [event] = store.events("demo", kind="ingest")
    assert event["source"] == "attack" and reason in event["text"], event["text"]
    assert ingest.refused == 1


def test_a_replayed_batch_changes_nothing(store: Store) -> None:
    ingest = IngestService("demo", None, store, {"m-h01", "m-h02"})
    ingest.store_batch([("a", _good(0))], NOW)  # type: ignore[list-item]
    tampered = _good(0).replace(b"0.25", b"9.25")
    ingest.store_batch([("a", _good(0)), ("b", _good(0)), ("c", tampered)], NOW)  # type: ignore[list-item]
    readings = Readings(store)
    assert readings.count() == 2
    assert readings.series("m-h02", "import", T0, NOW).tolist() == [0.25]  # not overwritten
    [clash] = readings.conflicts()
    assert (clash["stored_kwh"], clash["offered_kwh"], clash["source"]) == (0.25, 9.25, "c")


def test_bad_messages_over_the_broker_are_acknowledged_and_the_ingest_goes_on(
    store: Store,
) -> None:
    with mosquitto() as broker:
        session = f"mdms-{uuid.uuid4().hex[:6]}"
        sub = DurableSubscriber(
            broker.host,
            broker.port,
            client_id=session,
            topic=readings_topic("demo", "+"),
            login=broker.login("mdms"),
        )
        ingest = IngestService("demo", sub, store, {"m-h01", "m-h02"}, batch_delay_s=0.05)
        ingest.wait_connected()
        pub = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"he-{session}")
        pub.username_pw_set(broker.login("head-end").username, broker.login("head-end").password)
        pub.connect(broker.host, broker.port)
        pub.loop_start()
        for payload in [_good(0), b"\xff\x00garbage", ATTACKS["NaN"][0], _good(1)]:
            pub.publish(batch_readings_topic("demo"), payload, qos=1).wait_for_publish(10)
        deadline = time.monotonic() + 10
        ingest.run_durable(
            lambda: (ingest.stored >= 4 and ingest.refused >= 2) or time.monotonic() > deadline
        )
        sub.close()
        time.sleep(0.5)  # (a new connection of the session must not overtake the old one's end)
        # nothing comes back: the refused messages were acknowledged as well
        again = DurableSubscriber(
            broker.host,
            broker.port,
            client_id=session,
            topic=readings_topic("demo", "+"),
            login=broker.login("mdms"),
        )
        while not again.connected:
            again.poll(0.1)
        again.poll(0.5)
        assert again.take() == []
        again.close()
        pub.loop_stop()
        pub.disconnect()
    assert ingest.stored == 4 and ingest.refused == 2
    assert Readings(store).count() == 4
