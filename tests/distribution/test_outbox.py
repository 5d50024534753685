"""Store-and-forward: the head-end keeps the readings the broker did not take (stopped while
the head-end closes intervals, and across a restart of the platform) and sends them again,
oldest first, once the broker is back: every interval arrives once."""

from __future__ import annotations

import threading
import time
import uuid
from datetime import UTC, datetime, timedelta

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from openmeg.core.bus import InProcessBus
from openmeg.core.clock import SimClock
from openmeg.core.messages import PointUpdate, ReadingsBatch, decode, readings_topic
from openmeg.core.store import Store
from openmeg.distribution.metering import MeteringService, RegisterReads
from openmeg.distribution.outbox import Outbox
from openmeg.operation.mdms.store import MeterReadings
from openmeg.protocols.mqtt_sender import MqttSender
from tests.mosquitto import Mosquitto, mosquitto

T0 = datetime(2026, 5, 4, 8, tzinfo=UTC)
Q = timedelta(minutes=15)
METERS = ("m-h01", "m-h02")


def _import_kwh(i: int, k: int) -> float:
    """Meter ``i``'s import register at boundary ``k``: it gains 0.25 * (i + 1) * k kWh."""
    return 100.0 * (i + 1) + 0.125 * (i + 1) * k * (k + 1)


class _Mdms:
    """A persistent session on the readings topics that collects what arrives."""

    def __init__(self, broker: Mosquitto) -> None:
        self.got: list[ReadingsBatch] = []
        self.lock = threading.Lock()
        self.client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=f"mdms-{uuid.uuid4().hex[:6]}",
            clean_session=False,
        )
        self.client.username_pw_set(broker.login("mdms").username, broker.login("mdms").password)
        self.client.on_connect = lambda c, *_: c.subscribe(readings_topic("demo", "+"), qos=1)
        self.client.on_message = self._on_message
        self.client.reconnect_delay_set(0.1, 0.5)
        self.client.connect(broker.host, broker.port)
        self.client.loop_start()

    def _on_message(self, _c: object, _u: object, msg: mqtt.MQTTMessage) -> None:
        m = decode(msg.payload)
        assert isinstance(m, ReadingsBatch)
        with self.lock:
            self.got.append(m)

    def wait(self, n: int, timeout_s: float = 20) -> list[ReadingsBatch]:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            with self.lock:
                if len(self.got) >= n:
                    break
            time.sleep(0.05)
        time.sleep(0.3)  # and nothing more comes
        with self.lock:
            return list(self.got)


def _service(store: Store, sender: MqttSender) -> MeteringService:
    readings = MeterReadings(store)

    async def record(rows: RegisterReads) -> int:
        return await store.in_thread(readings.add_registers, rows)

    return MeteringService(
        "demo",
        InProcessBus(),
        SimClock(T0),
        meters=set(METERS),
        device_meters=set(),
        record_registers=record,
        outbox=Outbox(store),
        send=sender.send,
    )


async def _boundary(service: MeteringService, k: int) -> None:
    for i, meter in enumerate(METERS):
        for name, value in (("import_kwh", _import_kwh(i, k)), ("export_kwh", 0.0)):
            service.handle(
                PointUpdate(
                    site="demo", device=meter, name=name, value=value, unit="kWh", ts=T0 + k * Q
                )
            )
    await service.tick(T0 + k * Q)


async def test_readings_wait_in_the_outbox_while_the_broker_is_down(store: Store) -> None:
    with mosquitto() as broker:
        mdms = _Mdms(broker)
        sender = MqttSender(
            broker.host,
            broker.port,
            client_id="head-end-t",
            login=broker.login("head-end"),
            timeout_s=2,
        )
        service = _service(store, sender)
        outbox = service.outbox
        assert outbox is not None
        try:
            for k in range(3):  # boundary 0 only records the registers
                await _boundary(service, k)
            assert outbox.count() == 0
            assert len(mdms.wait(2)) == 2  # (and acknowledged before the broker stops)
            broker.stop()
            for k in (3, 4):
                await _boundary(service, k)
            assert outbox.count() == 2  # kept: the broker took neither
            broker.start()
            await _boundary(service, 5)  # the two kept first, then this one
            assert outbox.count() == 0
            assert len(mdms.wait(5)) == 5
            broker.stop()
            await _boundary(service, 6)
            assert outbox.count() == 1
            await sender.close()
            # the platform restarts: a new head-end on the same store finds what was kept
            sender = MqttSender(
                broker.host,
                broker.port,
                client_id="head-end-t2",
                login=broker.login("head-end"),
                timeout_s=2,
            )
            again = _service(store, sender)
            broker.start()
            assert await again.forward() == 1
            assert again.outbox is not None and again.outbox.count() == 0
            got = mdms.wait(6)
        finally:
            await sender.close()
            mdms.client.loop_stop()
            mdms.client.disconnect()
    starts = [b.interval_start[0] for b in got]
    assert starts == [T0 + k * Q for k in range(6)]  # each interval once, in order
    for k, batch in enumerate(got):
        assert batch.meter == ["m-h01", "m-h01", "m-h02", "m-h02"]
        assert batch.channel == ["import", "export", "import", "export"]
        # interval k runs from boundary k to k + 1: the register gained 0.25 * (i + 1) * (k + 1)
        assert batch.value_kwh == [0.25 * (k + 1), 0.0, 0.5 * (k + 1), 0.0]
