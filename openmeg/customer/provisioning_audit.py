"""The provisioning system's audit trail with group commit: every relay and refusal is appended
to the site's keyed audit chain; the records that queue while one transaction commits are
written together in the next (in a worker thread, off the event loop), and each caller waits
until its record is stored."""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime
from typing import Any

from openmeg.core.audit import AuditEntry, AuditLog

log = logging.getLogger("openmeg.provisioning")
MAX_BATCH = 512
"""The most records one transaction writes."""


def _report(done: asyncio.Future[None]) -> None:
    if not done.cancelled() and done.exception() is not None:
        log.error("an audit record could not be stored: %s", done.exception())


class AuditWriter:
    """Appends records in batches from a task of its own; ``await record(...)`` returns once
    the record is stored (an error in storing it is raised there)."""

    def __init__(self, audit: AuditLog) -> None:
        self.audit = audit
        self._queue: asyncio.Queue[tuple[AuditEntry, asyncio.Future[None]] | None] = asyncio.Queue()
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
        entry = AuditEntry(ts=ts, actor=actor, action=action, target=target, detail=detail)
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
            batch: list[tuple[AuditEntry, asyncio.Future[None]]] = []
            item = await self._queue.get()  # then all that queued while the last commit ran
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
                await asyncio.to_thread(self.audit.append_many, [e for e, _ in batch])
            except Exception as err:  # each waiting caller sees why its record is not stored
                for _, done in batch:
                    if not done.done():
                        done.set_exception(err)
                continue
            for _, done in batch:
                if not done.done():
                    done.set_result(None)
