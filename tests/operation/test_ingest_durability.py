"""No reading lost: 20,000 readings over MQTT (10 a message, the columnar batches a head-end
sends at each boundary: 2,000 messages) at no less than 200 messages/s, while the ingest
process (``openmeg meters ingest``) is SIGKILLed 25 times at random moments and is down once
for 30 s during the stream; afterwards every reading published is stored exactly once."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import IO

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from openmeg.core.messages import ReadingsBatch, batch_readings_topic, encode, readings_topic
from openmeg.core.store import Store
from openmeg.operation.mdms.store import MeterReadings as Readings
from tests.mosquitto import Mosquitto, mosquitto

T0 = datetime(2026, 1, 1, tzinfo=UTC)
METERS = ("m-h01", "m-h02", "m-factory", "m-o3", "m-school")
BOUNDARIES = 2000  # 5 meters x 2 channels = 10 readings a boundary: 20,000 readings
RATE = 250.0  # messages/s the head-end sends at
KILLS = 25
OUTAGE_S = 30.0


def _value(i: int, channel: str, k: int) -> float:
    return round(0.05 * (i + 1) + (k % 96) / 1000 + (0.5 if channel == "export" else 0.0), 4)


def _message(k: int) -> ReadingsBatch:
    rows = [(i, m, c) for i, m in enumerate(METERS) for c in ("import", "export")]
    return ReadingsBatch(
        site="demo",
        meter=[m for _, m, _ in rows],
        channel=[c for _, _, c in rows],  # type: ignore[misc]
        interval_start=[T0 + k * timedelta(minutes=15)] * len(rows),
        value_kwh=[_value(i, c, k) for i, _, c in rows],
    )


def _spawn(url: str, broker: Mosquitto, session: str, log: Path) -> subprocess.Popen[bytes]:
    with open(log, "ab") as err:
        return _popen(url, broker, session, err)


def _popen(url: str, broker: Mosquitto, session: str, err: IO[bytes]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "openmeg",
            "meters",
            "ingest",
            "--site",
            "demo",
            "--mqtt",
            f"{broker.host}:{broker.port}",
            "--store",
            url,
            "--session",
            session,
        ],
        stdout=subprocess.PIPE,
        stderr=err,
        env={**os.environ, **broker.env(), "PYTHONUNBUFFERED": "1"},
    )


def _ready(proc: subprocess.Popen[bytes], log: Path) -> None:
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == b"ready", log.read_text()[-2000:]


def _kill(proc: subprocess.Popen[bytes]) -> None:
    proc.send_signal(signal.SIGKILL)
    proc.communicate(timeout=10)


class _Stream(threading.Thread):
    """The head-end: every message at ``RATE``, QoS 1; measures the rate the broker took."""

    def __init__(self, client: mqtt.Client) -> None:
        super().__init__(daemon=True)
        self.client = client
        self.rate = 0.0
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            topic = batch_readings_topic("demo")
            payloads = [encode(_message(k)) for k in range(BOUNDARIES)]
            start = time.monotonic()
            infos = []
            for k, payload in enumerate(payloads):
                delay = start + k / RATE - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
                infos.append(self.client.publish(topic, payload, qos=1))
            for info in infos:
                info.wait_for_publish(30)
                assert info.is_published()  # the broker has acknowledged it
            self.rate = BOUNDARIES / (time.monotonic() - start)
        except BaseException as err:
            self.error = err


@pytest.mark.slow
def test_sigkills_and_an_outage_lose_no_reading(store: Store, tmp_path: Path) -> None:
    session = f"openmeg-mdms-test-{uuid.uuid4().hex[:8]}"
    log = tmp_path / "ingest.log"
    rng = random.Random(11)
    with mosquitto() as broker:
        head_end = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"head-end-{session}")
        head_end.username_pw_set(
            broker.login("head-end").username, broker.login("head-end").password
        )
        head_end.max_inflight_messages_set(100)
        head_end.connect(broker.host, broker.port)
        head_end.loop_start()
        ingest = _spawn(store.url, broker, session, log)
        _ready(ingest, log)  # the session exists: the broker queues for it from now on
        stream = _Stream(head_end)
        kills, outage_during_stream = 0, False
        try:
            stream.start()
            while kills < KILLS:
                time.sleep(rng.uniform(0.3, 2.5))  # starting, storing a batch, or waiting
                _kill(ingest)
                kills += 1
                if kills == 3:
                    outage_during_stream = stream.is_alive()
                    time.sleep(OUTAGE_S)
                ingest = _spawn(store.url, broker, session, log)
            stream.join(60)
            _ready(ingest, log)
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
                head_end.publish(readings_topic("demo", "m-x99"), payload, qos=1).wait_for_publish(
                    10
                )
            readings = Readings(store)
            deadline = time.monotonic() + 90
            while time.monotonic() < deadline:
                if readings.count() >= 20_000 and len(store.events("demo", kind="ingest")) >= 2:
                    break
                time.sleep(0.3)
        finally:
            ingest.send_signal(signal.SIGTERM)
            out, _ = ingest.communicate(timeout=30)
            head_end.loop_stop()
            head_end.disconnect()
    assert stream.error is None, stream.error
    assert stream.rate >= 200, f"{stream.rate:.0f} messages/s"
    assert kills == KILLS and outage_during_stream
    assert readings.count() == 20_000, log.read_text()[-2000:]
    assert readings.conflicts() == []
    end = T0 + BOUNDARIES * timedelta(minutes=15)
    for i, meter in enumerate(METERS):
        for channel in ("import", "export"):
            s = readings.series(meter, channel, T0, end)
            assert len(s) == BOUNDARIES
            assert s.index[0] == T0 and s.index[-1] == end - timedelta(minutes=15)
            assert s.tolist() == [_value(i, channel, k) for k in range(BOUNDARIES)]
    refused = [e["text"] for e in store.events("demo", kind="ingest")]
    assert len(refused) == 2 and any("unknown meter 'm-x99'" in t for t in refused), refused
    assert b"messages refused" in out
