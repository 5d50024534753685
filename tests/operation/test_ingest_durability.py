"""No data lost: the ingest process is killed with SIGKILL again and again while meters stream
readings; every reading the broker acknowledged ends up stored exactly once."""

import json
import os
import random
import signal
import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from openmeg.core.messages import IntervalReading, MeterReadings, encode, readings_topic
from openmeg.core.store import Store
from openmeg.operation.mdms.store import MeterReadings as Readings
from tests.services import Broker

T0 = datetime(2026, 10, 1, 4, tzinfo=UTC)
METERS = ("m-h01", "m-factory", "m-o3")


def _value(meter: str, k: int) -> float:
    return round(0.1 + (hash(meter) % 7) / 10 + (k % 96) / 100, 4)


def _messages(days: int) -> list[MeterReadings]:
    out = []
    for day in range(days):
        for meter in METERS:
            ks = range(day * 96, (day + 1) * 96)
            out.append(
                MeterReadings(
                    site="demo",
                    meter=meter,
                    channel="import",
                    readings=[
                        IntervalReading(
                            interval_start=T0 + timedelta(minutes=15 * k),
                            value_kwh=_value(meter, k),
                        )
                        for k in ks
                    ],
                )
            )
    return out


def _start(url: str, broker: Broker, session: str) -> subprocess.Popen[str]:
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "openmeg",
            "meters",
            "ingest",
            "--site",
            "demo",
            "--mqtt",
            broker.address(),
            "--store",
            url,
            "--session",
            session,
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, **broker.env(), "PYTHONUNBUFFERED": "1"},
    )
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == "ready", proc.stderr.read() if proc.stderr else ""
    return proc


def test_sigkill_loses_nothing_acknowledged(store: Store, broker: Broker) -> None:
    host, port = broker.host, broker.port
    session = f"openmeg-mdms-test-{uuid.uuid4().hex[:8]}"
    messages = _messages(days=20)  # 60 messages of 96 readings: 5,760 readings
    rng = random.Random(5)
    publisher = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"head-end-{session}")
    publisher.username_pw_set("openmeg-demo-head-end", broker.passwords["head-end"])
    publisher.connect(host, port)
    publisher.loop_start()
    ingest = _start(store.url, broker, session)
    kills = 0
    try:
        order = list(range(len(messages)))
        rng.shuffle(order)  # out of order
        order += rng.sample(order, 12)  # and some sent twice
        for n, i in enumerate(order):
            info = publisher.publish(
                readings_topic("demo", messages[i].meter), encode(messages[i]), qos=1
            )
            info.wait_for_publish(10)  # the broker has acknowledged it
            assert info.is_published()
            if n % 9 == 4:
                time.sleep(rng.uniform(0.0, 0.05))
                ingest.send_signal(signal.SIGKILL)
                ingest.communicate(timeout=10)  # reap it and close its pipes
                kills += 1
                ingest = _start(store.url, broker, session)
        bad = [
            b"not json",
            json.dumps(
                {
                    "v": 1,
                    "type": "readings",
                    "site": "demo",
                    "meter": "m-x99",
                    "channel": "import",
                    "readings": [{"interval_start": T0.isoformat(), "value_kwh": 1.0}],
                }
            ).encode(),
        ]
        for payload in bad:
            publisher.publish(readings_topic("demo", "m-x99"), payload, qos=1).wait_for_publish(10)
        readings = Readings(store)
        deadline = time.monotonic() + 60
        while readings.count() < 5760 and time.monotonic() < deadline:
            time.sleep(0.2)
        time.sleep(1.0)  # let the two bad messages through as well
    finally:
        ingest.send_signal(signal.SIGTERM)
        out, _ = ingest.communicate(timeout=30)
        publisher.loop_stop()
        publisher.disconnect()
    assert kills >= 6
    assert readings.count() == 5760
    assert readings.conflicts() == []
    for meter in METERS:
        s = readings.series(meter, "import", T0, T0 + timedelta(days=20))
        assert s.tolist() == [_value(meter, k) for k in range(20 * 96)]
    refused = [e["text"] for e in store.events("demo", kind="ingest")]
    assert len(refused) == 2 and any("unknown meter 'm-x99'" in t for t in refused)
    assert "messages refused" in out
