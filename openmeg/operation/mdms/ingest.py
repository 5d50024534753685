"""The MDMS ingest service: interval readings from the AMI, stored. They come from the platform's
bus (the head-end's readings, ``run`` or ``pump``), or from an MQTT broker through a durable
subscriber, acknowledged only once the batch they came in is committed (``handle``,
``run_durable``). Either way messages are stored in batches: each message is checked alone,
the good ones' readings are stored in one transaction; a malformed message or one naming an
unknown meter is refused alone and logged (and, from the broker, acknowledged so that it does
not come back); nothing of a refused message is stored. On the bus, what was stored is announced on
``stored_readings_topic`` for the services that work on stored readings (the accounts)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Set
from datetime import UTC, datetime

from pydantic import ValidationError

from openmeg.core.bus import Bus, Subscription, bursts, waiting
from openmeg.core.clock import Clock
from openmeg.core.messages import (
    BusMessage,
    ReadingsBatch,
    decode,
    readings_topic,
    split_readings,
    stored_readings_topic,
)
from openmeg.core.messages import MeterReadings as ReadingsMessage
from openmeg.core.store import Store
from openmeg.operation.mdms.bulk import columns_of, concat, problems, store_columns
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
        batch_messages: int = 500,
        max_interval_kwh: float | None = None,
    ) -> None:
        """``subscriber``: the durable MQTT subscriber, or ``None`` on the platform's ``bus``
        (readings received at ``clock``'s time); ``max_interval_kwh``: the most a meter of the
        site measures in one interval (a reading above it is refused)."""
        self.site = site
        self.subscriber = subscriber
        self.store = store
        self.readings = MeterReadings(store)
        self.meters = meters
        self.bus, self.clock = bus, clock
        self.batch_delay_s, self.batch_messages = batch_delay_s, batch_messages
        self.max_interval_kwh = max_interval_kwh
        self.idle_s = 0.02
        self.stored = 0
        self.duplicates = 0
        self.conflicts = 0
        self.refused = 0
        self.last_refusal = ""
        self._sub: Subscription | None = None

    def store_batch(
        self, items: list[tuple[str, BusMessage | bytes]], now: datetime
    ) -> list[ReadingsMessage | ReadingsBatch]:
        """Check each message alone (refused alone, with an event), store the good ones'
        readings in one transaction; the messages stored."""
        good: list[ReadingsMessage | ReadingsBatch] = []
        parts = []
        for source, item in items:
            try:
                msg = decode(item) if isinstance(item, bytes) else item
                if not isinstance(msg, ReadingsMessage | ReadingsBatch) or msg.site != self.site:
                    raise ValueError("not a readings message of this site")
                cols = columns_of(msg, source)
                if wrong := problems(
                    cols, meters=self.meters, now=now, max_kwh=self.max_interval_kwh
                ):
                    raise IngestError(wrong)
            except (ValidationError, ValueError, IngestError) as err:
                self._refuse(err, source, now)
                continue
            good.append(msg)
            parts.append(cols)
        if parts:
            report = store_columns(self.store, concat(parts), now)
            self.stored += report.new
            self.duplicates += report.duplicates
            self.conflicts += len(report.conflicts)
        return good

    def store_message(self, msg: BusMessage, source: str, now: datetime) -> str:
        """Check and store one readings message; why it was refused ("" when stored)."""
        refused = self.refused
        self.store_batch([(source, msg)], now)
        return self.last_refusal if self.refused > refused else ""

    def _refuse(self, err: Exception, source: str, now: datetime) -> str:
        if isinstance(err, ValidationError):
            reason = "malformed readings message: " + "; ".join(
                f"{'.'.join(str(p) for p in e['loc'][1:]) or 'message'}: {e['msg']}"
                for e in err.errors()[:5]
            )
        else:
            reason = str(err).splitlines()[0]
        reason = reason[:500]
        self.refused += 1
        self.last_refusal = reason
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
        """Store a burst (the good messages in one transaction); those stored, by channel."""
        stored = self.store_batch(list(items), now)
        return [part for msg in stored for part in split_readings(msg)]

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
        """Store a batch (one transaction), log what was refused, then ack it all."""
        assert self.subscriber is not None
        self.store_batch([(d.topic, d.payload) for d in deliveries], datetime.now(UTC))
        self.subscriber.ack(deliveries)

    def wait_connected(self) -> None:
        """Return once the subscriber holds its session on the broker."""
        assert self.subscriber is not None
        while not self.subscriber.connected:
            self.subscriber.poll(0.1)

    def run_durable(self, stop: Callable[[], bool]) -> None:
        """Take from the broker until ``stop()`` says so: a batch is stored once it holds
        ``batch_messages`` messages, or its first has waited ``batch_delay_s``, or nothing more
        came for ``idle_s`` (the broker sends only so many unacknowledged messages)."""
        sub = self.subscriber
        assert sub is not None
        while not stop():
            before = sub.pending
            sub.poll(self.idle_s)
            waited = sub.waited_s()
            if sub.pending and (
                sub.pending >= self.batch_messages
                or sub.pending == before
                or (waited is not None and waited >= self.batch_delay_s)
            ):
                self.handle(sub.take())
        if sub.pending:
            self.handle(sub.take())
