"""The MDMS ingest service: interval readings from the AMI over MQTT, stored before they are
acknowledged. Malformed messages and unknown meters are refused, logged, and acknowledged so
that they do not come back; nothing of a refused message is stored."""

from __future__ import annotations

import time
from collections.abc import Callable, Set
from datetime import UTC, datetime

import pandas as pd
from pydantic import ValidationError

from openmeg.core.messages import MeterReadings as ReadingsMessage
from openmeg.core.messages import decode
from openmeg.core.store import Store
from openmeg.operation.mdms.store import IngestError, MeterReadings
from openmeg.protocols.durable import Delivery, DurableSubscriber


class IngestService:
    def __init__(
        self,
        site: str,
        subscriber: DurableSubscriber,
        store: Store,
        meters: Set[str],
        *,
        batch_delay_s: float = 0.2,
    ) -> None:
        self.site = site
        self.subscriber = subscriber
        self.store = store
        self.readings = MeterReadings(store)
        self.meters = meters
        self.batch_delay_s = batch_delay_s
        self.stored = 0
        self.refused = 0

    def handle(self, deliveries: list[Delivery]) -> None:
        """Store what is good (one transaction per message), log what is not, then ack all."""
        now = datetime.now(UTC)
        for d in deliveries:
            reason = ""
            try:
                msg = decode(d.payload)
                if not isinstance(msg, ReadingsMessage) or msg.site != self.site:
                    raise ValueError("not a readings message of this site")
                frame = pd.DataFrame(
                    {
                        "meter": msg.meter,
                        "channel": msg.channel,
                        "interval_start": [r.interval_start for r in msg.readings],
                        "value_kwh": [r.value_kwh for r in msg.readings],
                    }
                )
                report = self.readings.ingest(
                    frame, meters=self.meters, source=d.topic, received_at=now
                )
                self.stored += report.new
            except (ValidationError, ValueError, IngestError) as err:
                reason = str(err).splitlines()[0][:500]
            if reason:
                self.refused += 1
                self.store.add_event(
                    ts=now,
                    site=self.site,
                    kind="ingest",
                    source=d.topic,
                    code="refused",
                    text=reason,
                    severity="warning",
                )
        self.subscriber.ack(deliveries)

    def wait_connected(self) -> None:
        """Return once the subscriber holds its session on the broker."""
        while not self.subscriber.connected:
            self.subscriber.poll(0.1)

    def run(self, stop: Callable[[], bool]) -> None:
        while not stop():
            self.subscriber.poll(0.05)
            waiting = self.subscriber.take()
            if waiting:
                self.handle(waiting)
            else:
                time.sleep(0.01)
