"""The provisioning system's audit trail with group commit: every relay and refusal is appended
to the site's keyed audit chain, the records that arrive together written in one transaction
(in a worker thread, off the event loop), and each caller waits until its record is stored."""

from __future__ import annotations

import asyncio
import json
import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from openmeg.core.audit import AuditLog, audit_head, audit_log
from openmeg.core.audit_chain import GENESIS, head_mac, record_mac
from openmeg.core.store import as_utc

log = logging.getLogger("openmeg.provisioning")
MAX_BATCH = 512
"""The most records one transaction writes."""
LINGER_S = 0.02
"""How long the writer gathers records after the first before it commits them [s]."""


@dataclass(frozen=True, kw_only=True, slots=True)
class Entry:
    """One record to append."""

    ts: datetime
    actor: str
    action: str
    target: str
    detail: dict[str, Any]


def append_many(audit: AuditLog, entries: list[Entry]) -> None:
    """Append ``entries`` to ``audit``'s chain in one transaction, each record keyed and chained
    exactly as :meth:`AuditLog.append` keys and chains one."""
    key = audit._key  # the chain's key, held by the log that was given it
    with audit._lock, audit.store.engine.begin() as conn:
        head = conn.execute(
            sa.select(audit_head).where(audit_head.c.id == 1).with_for_update()
        ).first()
        seq, prev = (head.seq, head.hash) if head is not None else (0, GENESIS)
        keyed_from = 1 if head is None else head.keyed_from or seq + 1
        rows = []
        for e in entries:
            seq += 1
            text = json.dumps(e.detail, sort_keys=True, separators=(",", ":"), default=str)
            digest = record_mac(key, seq, e.ts, e.actor, e.action, e.target, text, prev)
            rows.append(
                {
                    "seq": seq,
                    "ts": as_utc(e.ts),
                    "actor": e.actor,
                    "action": e.action,
                    "target": e.target,
                    "detail": text,
                    "prev_hash": prev,
                    "hash": digest,
                }
            )
            prev = digest
        conn.execute(audit_log.insert(), rows)
        values = {
            "seq": seq,
            "hash": prev,
            "keyed_from": keyed_from,
            "mac": head_mac(key, seq, prev, keyed_from),
        }
        if head is None:
            conn.execute(audit_head.insert(), {"id": 1, **values})
        else:
            conn.execute(audit_head.update().where(audit_head.c.id == 1).values(**values))


def _report(done: asyncio.Future[None]) -> None:
    if not done.cancelled() and done.exception() is not None:
        log.error("an audit record could not be stored: %s", done.exception())


class AuditWriter:
    """Appends records in batches from a task of its own; ``await record(...)`` returns once
    the record is stored (an error in storing it is raised there)."""

    def __init__(self, audit: AuditLog) -> None:
        self.audit = audit
        self._queue: asyncio.Queue[tuple[Entry, asyncio.Future[None]] | None] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        """Start writing."""
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="provisioning-audit")

    def submit(
        self, *, ts: datetime, actor: str, action: str, target: str, detail: dict[str, Any]
    ) -> asyncio.Future[None]:
        """Queue one record for the next group commit; the future is done once it is stored
        (a record that cannot be stored is logged as an error)."""
        if self._task is None:
            raise RuntimeError("the audit writer is not started")
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        done.add_done_callback(_report)
        entry = Entry(ts=ts, actor=actor, action=action, target=target, detail=detail)
        self._queue.put_nowait((entry, done))
        return done

    async def record(
        self, *, ts: datetime, actor: str, action: str, target: str, detail: dict[str, Any]
    ) -> None:
        """Append one record and wait until it is stored."""
        await self.submit(ts=ts, actor=actor, action=action, target=target, detail=detail)

    async def close(self) -> None:
        """Write what is queued, then stop."""
        if self._task is None:
            return
        self._queue.put_nowait(None)
        await self._task
        self._task = None

    async def _run(self) -> None:
        stop = False
        while not stop:
            batch: list[tuple[Entry, asyncio.Future[None]]] = []
            item = await self._queue.get()
            if item is not None and self._queue.qsize() < MAX_BATCH:
                await asyncio.sleep(LINGER_S)  # gather the records arriving meanwhile
            while True:
                if item is None:
                    stop = True
                else:
                    batch.append(item)
                if stop or self._queue.empty() or len(batch) >= MAX_BATCH:
                    break
                item = self._queue.get_nowait()
            if not batch:
                continue
            try:
                await asyncio.to_thread(append_many, self.audit, [e for e, _ in batch])
            except Exception as err:  # each waiting caller sees why its record is not stored
                for _, done in batch:
                    if not done.done():
                        done.set_exception(err)
                continue
            for _, done in batch:
                if not done.done():
                    done.set_result(None)
