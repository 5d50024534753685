"""The head-end's outbox (store-and-forward): every readings message is kept in the store before
it is sent and removed only once the broker acknowledged it. What could not be sent (the broker
down, the link cut) stays, across a restart of the platform, and is sent again, oldest first,
as soon as the broker takes messages again."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime

import sqlalchemy as sa

from openmeg.core.errors import BusError
from openmeg.core.messages import BusMessage, decode, encode
from openmeg.core.store import Store, as_utc, metadata

Send = Callable[[str, BusMessage], Awaitable[None]]
"""Publish a message; return once it was taken, raise ``BusError`` when it was not."""

outbox = sa.Table(
    "head_end_outbox",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("topic", sa.String(256), nullable=False),
    sa.Column("payload", sa.LargeBinary, nullable=False),
    sa.Column("kept_at", sa.DateTime(timezone=True), nullable=False),
)


class Outbox:
    """Messages not yet acknowledged by the broker, in the order they were made."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.blocked = True  # until a forward finds out: what a previous run left may wait
        metadata.create_all(store.engine, tables=[outbox])

    def put(self, topic: str, message: BusMessage, at: datetime) -> None:
        row = {"topic": topic, "payload": encode(message), "kept_at": as_utc(at)}
        with self.store.engine.begin() as conn:
            conn.execute(outbox.insert(), row)

    def oldest(self, limit: int = 100) -> list[tuple[int, str, bytes]]:
        q = sa.select(outbox.c.id, outbox.c.topic, outbox.c.payload).order_by(outbox.c.id)
        with self.store.engine.connect() as conn:
            return [(i, t, bytes(p)) for i, t, p in conn.execute(q.limit(limit))]

    def remove(self, ids: list[int]) -> None:
        with self.store.engine.begin() as conn:
            conn.execute(outbox.delete().where(outbox.c.id.in_(ids)))

    def count(self) -> int:
        with self.store.engine.connect() as conn:
            return int(conn.execute(sa.select(sa.func.count()).select_from(outbox)).scalar_one())

    async def forward(self, send: Send) -> int:
        """Send what waits, oldest first, each removed once taken; stop at the first that is
        not (it stays, with all after it). How many were sent."""
        sent, self.blocked = 0, False
        while rows := await self.store.in_thread(self.oldest, 100):
            done: list[int] = []
            try:
                for i, topic, payload in rows:
                    await send(topic, decode(payload))
                    done.append(i)
            except BusError:
                self.blocked = True  # the rest waits for the next try
                return sent + len(done)
            finally:
                if done:
                    await self.store.in_thread(self.remove, done)
            sent += len(done)
        return sent
