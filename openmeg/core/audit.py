"""The tamper-evident audit log (Y.2071 clause 11): every command, login, configuration change
and edit of metered data, appended to a chain keyed with the site's audit key (``audit/hmac`` in
the keystore), given to the log by whoever opens it.

Each record's hash is an HMAC over its sequence number, its fields and the hash before it; the
head row, written in the same transaction, holds the last sequence number and hash under an HMAC
of its own. An edited, deleted, reordered or recomputed record, a replaced or deleted head and a
truncated end are all found, and ``verify`` says where; an :class:`Anchor` kept off the machine
catches a truncation back to an older genuine head (see docs/security.md).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from openmeg.core.audit_chain import (
    GENESIS,
    Anchor,
    head_mac,
    record_hash,
    record_mac,
    verify_chain,
)
from openmeg.core.errors import OpenMegError
from openmeg.core.keystore import Keystore
from openmeg.core.store import Store, as_utc, metadata

__all__ = [
    "GENESIS",
    "Anchor",
    "AuditEntry",
    "AuditKeyError",
    "AuditLog",
    "AuditRecord",
    "audit_log_of",
    "record_hash",
    "record_mac",
]

KEY_NAME = "audit/hmac"

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
    sa.Column("mac", sa.String(64), nullable=True),  # NULL: a log from before keying
    sa.Column("keyed_from", sa.Integer, nullable=True),  # the first keyed record
)


@dataclass(frozen=True, kw_only=True)
class AuditEntry:
    """A record to append: when, who (from a verified identity), what, to what, and details."""

    ts: datetime
    actor: str
    action: str
    target: str
    detail: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, kw_only=True)
class AuditRecord:
    seq: int
    ts: datetime
    actor: str
    action: str
    target: str
    detail: dict[str, Any]
    hash: str


def _add_head_columns(store: Store) -> None:
    """Give a head table from before keying its ``mac`` and ``keyed_from`` columns."""
    have = {c["name"] for c in sa.inspect(store.engine).get_columns("audit_head")}
    for name, kind in (("mac", "VARCHAR(64)"), ("keyed_from", "INTEGER")):
        if name not in have:
            try:
                with store.engine.begin() as conn:
                    conn.execute(sa.text(f"ALTER TABLE audit_head ADD COLUMN {name} {kind}"))
            except sa.exc.SQLAlchemyError:  # another process added it meanwhile
                have = {c["name"] for c in sa.inspect(store.engine).get_columns("audit_head")}
                if name not in have:
                    raise


class AuditLog:
    """Append and verify under the audit ``key``; one writer at a time (a lock here, the head
    row's lock in the database for other processes)."""

    def __init__(self, store: Store, key: bytes) -> None:
        if len(key) < 32:
            raise ValueError("the audit key has at least 32 bytes (keystore secret audit/hmac)")
        self.store, self._key = store, bytes(key)
        for table in (audit_log, audit_head):
            table.create(store.engine, checkfirst=True)
        _add_head_columns(store)
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
        """Append one record (in a transaction of its own) and return it."""
        entry = AuditEntry(ts=ts, actor=actor, action=action, target=target, detail=detail or {})
        return self.append_many([entry])[0]

    def append_many(self, entries: Sequence[AuditEntry]) -> list[AuditRecord]:
        """Append ``entries`` in order in one transaction (a group commit), each keyed and
        chained exactly as one appended alone."""
        with self._lock, self.store.engine.begin() as conn:
            head = conn.execute(
                sa.select(audit_head).where(audit_head.c.id == 1).with_for_update()
            ).first()
            seq, prev = (head.seq, head.hash) if head is not None else (0, GENESIS)
            keyed_from = 1 if head is None else head.keyed_from or seq + 1  # seals an unkeyed log
            rows, out = [], []
            for e in entries:
                seq += 1
                text = json.dumps(e.detail, sort_keys=True, separators=(",", ":"), default=str)
                digest = record_mac(self._key, seq, e.ts, e.actor, e.action, e.target, text, prev)
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
                out.append(
                    AuditRecord(
                        seq=seq,
                        ts=e.ts,
                        actor=e.actor,
                        action=e.action,
                        target=e.target,
                        detail=e.detail,
                        hash=digest,
                    )
                )
                prev = digest
            if not rows:
                return []
            conn.execute(audit_log.insert(), rows)
            values = {
                "seq": seq,
                "hash": prev,
                "keyed_from": keyed_from,
                "mac": head_mac(self._key, seq, prev, keyed_from),
            }
            if head is None:
                conn.execute(audit_head.insert(), {"id": 1, **values})
            else:
                conn.execute(audit_head.update().where(audit_head.c.id == 1).values(**values))
        return out

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

    def _rows(self) -> tuple[list[Any], Any | None]:
        with self.store.engine.connect() as conn:
            rows = conn.execute(sa.select(audit_log).order_by(audit_log.c.seq)).all()
            head = conn.execute(sa.select(audit_head).where(audit_head.c.id == 1)).first()
        return list(rows), head

    def verify(self) -> list[str]:
        """Every break of the chain, in order; empty when the log is intact."""
        rows, head = self._rows()
        return verify_chain(rows, head, self._key)

    def anchor(self, now: datetime) -> Anchor:
        """The last record as an anchor taken ``now``; ValueError if the log is empty."""
        rows, _ = self._rows()
        if not rows:
            raise ValueError("the audit log is empty: there is no head to anchor yet")
        return Anchor.of(self._key, rows[-1], now)

    def verify_anchor(self, anchor: Anchor) -> list[str]:
        """What disagrees with ``anchor`` (a truncation, a changed record); empty if none."""
        rows, _ = self._rows()
        return anchor.problems(rows, self._key)


class AuditKeyError(OpenMegError):
    """The keystore given is not the one whose audit key sealed the log."""


def _sealed(store: Store) -> bool:
    """Whether the log in ``store`` has a head sealed under some audit key."""
    insp = sa.inspect(store.engine)
    if not insp.has_table("audit_head"):
        return False
    if "mac" not in {c["name"] for c in insp.get_columns("audit_head")}:
        return False
    with store.engine.connect() as conn:
        mac = conn.execute(sa.text("SELECT mac FROM audit_head WHERE id = 1")).scalar()
    return mac is not None


def audit_log_of(store: Store, keystore: Keystore) -> AuditLog:
    """The audit log in ``store`` under the keystore's audit key, made for a new log; refused
    (``AuditKeyError``) when the log is sealed already and this keystore has no audit key,
    which would start a chain under another key."""
    key = keystore.get(KEY_NAME)
    if key is None:
        if _sealed(store):
            raise AuditKeyError(
                f"the audit log in {store.engine.url.render_as_string(hide_password=True)} is "
                f"sealed under an audit key that the keystore {keystore.path} does not hold: "
                "use the site's own keystore (OPENMEG_KEYSTORE, or run where it is)"
            )
        key = keystore.secret(KEY_NAME)
    return AuditLog(store, key)
