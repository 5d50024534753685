"""The tamper-evident audit log (Y.2071 clause 11): every command, login, configuration change
and edit of metered data, appended to a hash chain.

Each record's hash covers its sequence number, its fields and the hash of the record before it;
a head row, written in the same transaction, holds the last sequence number and hash. So an
edited record, a deleted one (in the middle or at the end) and records put in another order all
break the chain, and ``verify`` says where.
"""

from __future__ import annotations

import hashlib
import json
import threading
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from openmeg.core.store import Store, as_utc, metadata

GENESIS = "0" * 64

audit_log = sa.Table(
    "audit_log",
    metadata,
    sa.Column("seq", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("ts", sa.DateTime(timezone=True), nullable=False),
    sa.Column("actor", sa.String(128), nullable=False),
    sa.Column("action", sa.String(64), nullable=False),
    sa.Column("target", sa.String(256), nullable=False),
    sa.Column("detail", sa.Text, nullable=False),
    sa.Column("prev_hash", sa.String(64), nullable=False),
    sa.Column("hash", sa.String(64), nullable=False),
)

audit_head = sa.Table(
    "audit_head",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("seq", sa.Integer, nullable=False),
    sa.Column("hash", sa.String(64), nullable=False),
)


def record_hash(
    seq: int, ts: datetime, actor: str, action: str, target: str, detail: str, prev_hash: str
) -> str:
    text = "\x1f".join([str(seq), as_utc(ts).isoformat(), actor, action, target, detail, prev_hash])
    return hashlib.sha256(text.encode()).hexdigest()


@dataclass(frozen=True, kw_only=True)
class AuditRecord:
    seq: int
    ts: datetime
    actor: str
    action: str
    target: str
    detail: dict[str, Any]
    hash: str


class AuditLog:
    """Append and verify; one writer at a time (a lock here, the head row's lock in the
    database for other processes)."""

    def __init__(self, store: Store) -> None:
        self.store = store
        for table in (audit_log, audit_head):
            table.create(store.engine, checkfirst=True)
        self._lock = threading.Lock()

    def append(
        self,
        *,
        ts: datetime,
        actor: str,
        action: str,
        target: str,
        detail: dict[str, Any] | None = None,
    ) -> AuditRecord:
        text = json.dumps(detail or {}, sort_keys=True, separators=(",", ":"), default=str)
        with self._lock, self.store.engine.begin() as conn:
            head = conn.execute(
                sa.select(audit_head.c.seq, audit_head.c.hash)
                .where(audit_head.c.id == 1)
                .with_for_update()
            ).first()
            seq, prev = (head.seq + 1, head.hash) if head is not None else (1, GENESIS)
            digest = record_hash(seq, ts, actor, action, target, text, prev)
            conn.execute(
                audit_log.insert(),
                {
                    "seq": seq,
                    "ts": as_utc(ts),
                    "actor": actor,
                    "action": action,
                    "target": target,
                    "detail": text,
                    "prev_hash": prev,
                    "hash": digest,
                },
            )
            if head is None:
                conn.execute(audit_head.insert(), {"id": 1, "seq": seq, "hash": digest})
            else:
                conn.execute(
                    audit_head.update().where(audit_head.c.id == 1).values(seq=seq, hash=digest)
                )
        return AuditRecord(
            seq=seq,
            ts=ts,
            actor=actor,
            action=action,
            target=target,
            detail=detail or {},
            hash=digest,
        )

    def records(self, *, after: int = 0, limit: int = 1000) -> list[AuditRecord]:
        q = (
            sa.select(audit_log)
            .where(audit_log.c.seq > after)
            .order_by(audit_log.c.seq)
            .limit(limit)
        )
        with self.store.engine.connect() as conn:
            return [
                AuditRecord(
                    seq=r.seq,
                    ts=as_utc(r.ts),
                    actor=r.actor,
                    action=r.action,
                    target=r.target,
                    detail=json.loads(r.detail),
                    hash=r.hash,
                )
                for r in conn.execute(q)
            ]

    def count(self) -> int:
        """How many records the log holds."""
        with self.store.engine.connect() as conn:
            return int(conn.execute(sa.select(sa.func.count()).select_from(audit_log)).scalar_one())

    def verify(self) -> list[str]:
        """Every break of the chain, in order; empty when the log is intact."""
        problems: list[str] = []
        expected_seq, prev = 1, GENESIS
        with self.store.engine.connect() as conn:
            rows = conn.execute(sa.select(audit_log).order_by(audit_log.c.seq)).all()
            head = conn.execute(sa.select(audit_head).where(audit_head.c.id == 1)).first()
        for r in rows:
            if r.seq != expected_seq:
                if r.seq > expected_seq:
                    gone = f"{expected_seq}" + (f"-{r.seq - 1}" if r.seq - 1 > expected_seq else "")
                    problems.append(f"record {gone} deleted (the log goes on at {r.seq})")
                else:
                    problems.append(f"record {r.seq} out of order (after {expected_seq - 1})")
            if r.prev_hash != prev:
                problems.append(
                    f"record {r.seq}: the chain is broken before it "
                    "(a record before it was deleted, reordered or altered)"
                )
            digest = record_hash(r.seq, r.ts, r.actor, r.action, r.target, r.detail, r.prev_hash)
            if digest != r.hash:
                problems.append(f"record {r.seq} was edited (its contents do not match its hash)")
            expected_seq, prev = r.seq + 1, r.hash
        last_seq, last_hash = (rows[-1].seq, rows[-1].hash) if rows else (0, GENESIS)
        if head is not None and (head.seq, head.hash) != (last_seq, last_hash):
            if head.seq > last_seq:
                problems.append(f"records {last_seq + 1}-{head.seq} deleted from the end")
            else:
                problems.append(f"the head says record {head.seq}: the log was rewritten")
        elif head is None and rows:
            problems.append("the head record is missing: the log was rewritten")
        return problems
