"""The MDMS ingest service: interval readings from the AMI, stored. They come from the platform's
bus (the head-end's readings, ``run`` or ``pump``), or from an MQTT broker through a durable
subscriber, acknowledged once stored (``handle``, ``run_durable``). Either way each message is
checked and stored the same way, in one transaction; malformed messages and unknown meters are
refused and logged (and, from the broker, acknowledged so that they do not come back); nothing
of a refused message is stored. On the bus, what was stored is announced on
``stored_readings_topic`` for the services that work on stored readings (the accounts)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Set
from datetime import UTC, datetime

import pandas as pd
from pydantic import ValidationError

from openmeg.core.bus import Bus, Subscription, bursts, waiting
from openmeg.core.clock import Clock
from openmeg.core.messages import BusMessage, decode, readings_topic, stored_readings_topic
from openmeg.core.messages import MeterReadings as ReadingsMessage
from openmeg.core.store import Store
from openmeg.operation.mdms.store import IngestError, MeterReadings
from openmeg.protocols.durable import Delivery, DurableSubscriber


class IngestService:
    def __init__(
        self,
        site: str,
        subscriber: DurableSubscriber | None,
        store: Store,
        meters: Set[str],
        *,
        bus: Bus | None = None,
        clock: Clock | None = None,
        batch_delay_s: float = 0.2,
    ) -> None:
        """``subscriber``: the durable MQTT subscriber, or ``None`` on the platform's ``bus``
        (readings received at ``clock``'s time)."""
        self.site = site
        self.subscriber = subscriber
        self.store = store
        self.readings = MeterReadings(store)
        self.meters = meters
        self.bus, self.clock = bus, clock
        self.batch_delay_s = batch_delay_s
        self.stored = 0
        self.refused = 0
        self._sub: Subscription | None = None

    def store_message(self, msg: BusMessage, source: str, now: datetime) -> str:
        """Check and store one readings message; why it was refused ("" when stored)."""
        reason = ""
        try:
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
            report = self.readings.ingest(frame, meters=self.meters, source=source, received_at=now)
            self.stored += report.new
        except (ValidationError, ValueError, IngestError) as err:
            reason = self._refuse(err, source, now)
        return reason

    def _refuse(self, err: Exception, source: str, now: datetime) -> str:
        reason = str(err).splitlines()[0][:500]
        self.refused += 1
        self.store.add_event(
            ts=now,
            site=self.site,
            kind="ingest",
            source=source,
            code="refused",
            text=reason,
            severity="warning",
        )
        return reason

    def store_messages(
        self, items: list[tuple[str, BusMessage]], now: datetime
    ) -> list[ReadingsMessage]:
        """Store each message of a burst (one transaction each); those stored."""
        return [
            msg
            for topic, msg in items
            if not self.store_message(msg, topic, now) and isinstance(msg, ReadingsMessage)
        ]

    # --- on the platform's bus

    async def start(self) -> None:
        assert self.bus is not None, "the ingest takes from the bus it was given"
        self._sub = await self.bus.subscribe(readings_topic(self.site, "+"))

    async def stop(self) -> None:
        if self.bus is not None and self._sub is not None:
            await self.bus.unsubscribe(self._sub)
            self._sub = None

    async def take(self, items: list[tuple[str, BusMessage]]) -> int:
        """Store a burst from the bus in a worker thread; announce what was stored."""
        if not items:
            return 0
        assert self.bus is not None and self.clock is not None
        stored = await self.store.in_thread(self.store_messages, items, self.clock.now())
        for msg in stored:
            await self.bus.publish(stored_readings_topic(self.site, msg.meter), msg)
        return len(stored)

    async def pump(self) -> int:
        """Store the readings waiting on the bus; how many messages were stored."""
        return await self.take(waiting(self._sub))

    async def run(self, stop: asyncio.Event) -> None:
        """Store the readings as they come, until ``stop`` is set."""
        if self._sub is None:
            return
        async for burst in bursts(self._sub, stop):
            await self.take(burst)

    # --- from an MQTT broker, durably

    def handle(self, deliveries: list[Delivery]) -> None:
        """Store what is good (one transaction per message), log what is not, then ack all."""
        assert self.subscriber is not None
        now = datetime.now(UTC)
        for d in deliveries:
            try:
                msg = decode(d.payload)
            except (ValidationError, ValueError) as err:
                self._refuse(err, d.topic, now)
                continue
            self.store_message(msg, d.topic, now)
        self.subscriber.ack(deliveries)

    def wait_connected(self) -> None:
        """Return once the subscriber holds its session on the broker."""
        assert self.subscriber is not None
        while not self.subscriber.connected:
            self.subscriber.poll(0.1)

    def run_durable(self, stop: Callable[[], bool]) -> None:
        """Take from the broker until ``stop()`` says so."""
        assert self.subscriber is not None
        while not stop():
            self.subscriber.poll(0.05)
            waiting_now = self.subscriber.take()
            if waiting_now:
                self.handle(waiting_now)
            else:
                time.sleep(0.01)
