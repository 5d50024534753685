"""Benchmark: interval readings through the authenticated MQTT path into the MDMS.

A private Mosquitto from the configuration ``openmeg mqtt init`` writes (a password per
component, per-component ACLs, no anonymous client, persistence, queues sized for metering);
a head-end of ``METERS`` meters sends, at each of ``BOUNDARIES`` 15-minute boundaries, one
columnar ``ReadingsBatch`` of every meter's import and export (2 x METERS readings a message,
QoS 1, as the head-end's user), the shape ``MeteringService`` sends. The MDMS ingest's
persistent session is made first, so the broker queues the stream for it; then the ingest
(``IngestService.run_durable``, the code of ``openmeg meters ingest``, as the mdms user) takes
the queue: decode, check, store a batch in one transaction, acknowledge each message only after
its batch is committed. Timed from its connection to the last message acknowledged, into SQLite
(a file, WAL, synchronous=FULL) and PostgreSQL (127.0.0.1:5432, a database of its own).

Prints one JSON object a line: ``mqtt_ingest_readings_per_s`` (target at least 50,000) and
``mqtt_ingest_messages_per_s``, for each store. The storage behind it (a row per meter,
channel and UTC day, ``operation/mdms/day_rows.py``) is measured alone by ``mdms_ingest.py``;
this measures what the MQTT path adds to it.
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import paho.mqtt.client as mqtt
import sqlalchemy as sa
from paho.mqtt.enums import CallbackAPIVersion

from openmeg.core.messages import ReadingsBatch, batch_readings_topic, encode, readings_topic
from openmeg.core.store import Store, sqlite_url
from openmeg.operation.mdms.ingest import IngestService
from openmeg.operation.mdms.store import MeterReadings
from openmeg.protocols.durable import DurableSubscriber

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the suite's broker launcher
from tests.mosquitto import SITE, Mosquitto, mosquitto

METERS = 1000
BOUNDARIES = 100
T0 = datetime(2026, 1, 1, tzinfo=UTC)
PG_ADMIN = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
TARGET = 50_000


def payloads() -> list[bytes]:
    """The head-end's messages, one a boundary."""
    meters = [f"m-{i:05d}" for i in range(METERS)]
    out = []
    for k in range(BOUNDARIES):
        at = T0 + k * timedelta(minutes=15)
        out.append(
            encode(
                ReadingsBatch(
                    site=SITE,
                    meter=[m for m in meters for _ in (0, 1)],
                    channel=["import", "export"] * METERS,
                    interval_start=[at] * (2 * METERS),
                    value_kwh=[round(0.001 * (i % 997) + 0.0001 * k, 6) for i in range(2 * METERS)],
                )
            )
        )
    return out


def subscriber(broker: Mosquitto, session: str) -> DurableSubscriber:
    return DurableSubscriber(
        broker.host,
        broker.port,
        client_id=session,
        topic=readings_topic(SITE, "+"),
        login=broker.login("mdms"),
    )


def publish(broker: Mosquitto, messages: list[bytes]) -> None:
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"head-end-{uuid.uuid4().hex[:6]}")
    client.username_pw_set(broker.login("head-end").username, broker.login("head-end").password)
    client.connect(broker.host, broker.port)
    client.loop_start()
    infos = [client.publish(batch_readings_topic(SITE), p, qos=1) for p in messages]
    for info in infos:
        info.wait_for_publish(60)
        assert info.is_published()
    client.loop_stop()
    client.disconnect()


def run(store: Store, broker: Mosquitto, messages: list[bytes]) -> tuple[float, int]:
    """Seconds the ingest took for the queued stream, and the readings stored."""
    session = f"openmeg-mdms-bench-{uuid.uuid4().hex[:6]}"
    first = subscriber(broker, session)  # the persistent session: the broker queues for it
    while not first.connected:
        first.poll(0.1)
    first.close()
    publish(broker, messages)
    meters = {f"m-{i:05d}" for i in range(METERS)}
    MeterReadings(store)  # the schema
    start = time.perf_counter()
    sub = subscriber(broker, session)
    service = IngestService(SITE, sub, store, meters)
    acked = 0
    original_ack = sub.ack

    def ack(deliveries: list) -> None:  # type: ignore[type-arg]
        nonlocal acked
        original_ack(deliveries)
        acked += len(deliveries)

    sub.ack = ack  # type: ignore[method-assign]
    deadline = time.monotonic() + 300
    service.run_durable(lambda: acked >= len(messages) or time.monotonic() > deadline)
    seconds = time.perf_counter() - start
    assert acked == len(messages), f"{acked} of {len(messages)} messages came (the ACL?)"
    sub.close()
    assert service.refused == 0
    return seconds, MeterReadings(store).count()


def main() -> None:
    messages = payloads()
    n = BOUNDARIES * 2 * METERS
    print(
        f"# {len(messages)} messages of {2 * METERS} readings,"
        f" {sum(map(len, messages)) / 1e6:.1f} MB"
    )
    results = []
    with mosquitto() as broker, tempfile.TemporaryDirectory() as tmp:
        stores = [("sqlite", Store(sqlite_url(Path(tmp) / "bench.db")), None)]
        name = f"openmeg_bench_{uuid.uuid4().hex[:8]}"
        admin = sa.create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
        stores.append(("postgresql", Store(PG_ADMIN.rsplit("/", 1)[0] + f"/{name}"), name))
        try:
            for label, store, _ in stores:
                seconds, stored = run(store, broker, messages)
                assert stored == n, f"{label}: {stored} of {n} readings stored"
                print(f"# {label}: {n} readings in {seconds:.2f} s", file=sys.stderr)
                results.append((label, n / seconds, len(messages) / seconds))
        finally:
            for _, store, db in stores:
                store.close()
                if db:
                    with admin.connect() as conn:
                        conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)'))
            admin.dispose()
    for label, readings_s, messages_s in results:
        print(
            json.dumps(
                {
                    "metric": "mqtt_ingest_readings_per_s",
                    "value": round(readings_s),
                    "unit": "readings/s",
                    "target": f">={TARGET}",
                    "store": label,
                }
            )
        )
        print(
            json.dumps(
                {
                    "metric": "mqtt_ingest_messages_per_s",
                    "value": round(messages_s, 1),
                    "unit": "messages/s",
                    "readings_per_message": 2 * METERS,
                    "store": label,
                }
            )
        )


if __name__ == "__main__":
    main()
