"""Issued bills: numbered, frozen with what they were made from, never changed.

A bill is issued once per customer and period (revision 1, a new number). A later billing run
of the same period that charges differently (late readings, a correction, a new carry-over)
issues revision 2, 3, ... of the same number, each a whole bill, with a note of the difference:
a debit note when the customer owes more, a credit note when less. A run that charges the same
issues nothing. Each revision is stored as one canonical JSON document with its SHA-256; the
table refuses UPDATE and DELETE (a trigger on SQLite and PostgreSQL), and reading a revision
checks its hash.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any, Literal

import sqlalchemy as sa

from openmeg.core.errors import StoreError
from openmeg.core.store import Store, append_only, as_utc, metadata
from openmeg.provider.bill_freeze import (
    bill_dict,
    bill_of,
    canonical_json,
    line_dict,
    line_of,
    note_lines,
    same_charges,
    sha256,
)
from openmeg.provider.billing import Bill, BillLine

issued_bills = sa.Table(
    "issued_bills",
    metadata,
    sa.Column("site", sa.String(64), nullable=False),
    sa.Column("customer", sa.String(64), nullable=False),
    sa.Column("period", sa.String(7), nullable=False),
    sa.Column("revision", sa.Integer, nullable=False),
    sa.Column("number", sa.String(32), nullable=False),
    sa.Column("issued_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("document", sa.Text, nullable=False),
    sa.Column("content_hash", sa.String(64), nullable=False),
    sa.PrimaryKeyConstraint("site", "customer", "period", "revision"),
    sa.UniqueConstraint("site", "number", "revision"),
)
_REFUSAL = "issued bills are never changed: a new billing run issues a revision"
append_only(issued_bills, _REFUSAL)

Outcome = Literal["issued", "revised", "unchanged"]


@dataclass(frozen=True, kw_only=True)
class ToIssue:
    """A bill to issue, with what it was made from: the tariff's version, the version of each
    meter channel's readings (``bill_freeze``) and the carry-over to the next month."""

    bill: Bill
    tariff_version: str
    readings: dict[str, Any]
    carry_out: Any = None


@dataclass(frozen=True, kw_only=True)
class IssuedBill:
    """One revision of an issued bill, as stored. ``note`` is empty on revision 1; on a
    later revision its lines add up to ``difference`` (this total minus the previous)."""

    number: str
    revision: int
    period: str
    bill: Bill
    issued_at: datetime
    tariff_version: str
    readings: dict[str, Any]
    carry_out: Any
    note: tuple[BillLine, ...]
    difference: Decimal | None
    content_hash: str

    @property
    def kind(self) -> str:
        """``bill``, ``debit note`` or ``credit note`` (what the revision tells the customer)."""
        if self.difference is None:
            return "bill"
        return "debit note" if self.difference > 0 else "credit note"


class IssuedBills:
    """The issued bills of a site."""

    def __init__(self, store: Store, site: str, timezone: str) -> None:
        self.store = store
        self.site = site
        self.timezone = timezone
        metadata.create_all(store.engine, tables=[issued_bills])

    def issue(
        self,
        bill: Bill,
        *,
        period: str,
        tariff_version: str,
        readings: dict[str, Any],
        carry_out: Any = None,
        now: datetime,
    ) -> tuple[IssuedBill, Outcome]:
        """Issue one bill (``issue_all`` of one)."""
        made = ToIssue(
            bill=bill, tariff_version=tariff_version, readings=readings, carry_out=carry_out
        )
        return self.issue_all([made], period=period, now=now)[0]

    def issue_all(
        self, bills: Sequence[ToIssue], *, period: str, now: datetime
    ) -> list[tuple[IssuedBill, Outcome]]:
        """Issue a run's bills of ``period`` in one transaction, numbered in the order given:
        revision 1 under a new number, a revision with its note for a bill that charges
        differently from its newest revision, or nothing (``unchanged``: the newest revision
        returned). A concurrent run of the same period makes this one issue nothing
        (``StoreError``)."""
        t = issued_bills.c
        out: list[tuple[IssuedBill, Outcome]] = []
        rows = []
        with self.store.engine.begin() as conn:
            stored = conn.execute(
                sa.select(t.customer, t.revision, t.document, t.content_hash).where(
                    t.site == self.site, t.period == period
                )
            ).all()
            newest: dict[str, tuple[int, str, str]] = {}
            for customer, revision, doc, digest in stored:
                if revision > newest.get(customer, (0, "", ""))[0]:
                    newest[customer] = (revision, doc, digest)
            numbered = len(newest)
            for item in bills:
                b = item.bill
                last = None if b.customer not in newest else self._of(*newest[b.customer][1:])
                if (
                    last is not None
                    and same_charges(last.bill, b)
                    and (last.carry_out == item.carry_out)
                ):
                    out.append((last, "unchanged"))
                    continue
                if last is None:
                    numbered += 1
                    number, revision = f"{period}-{numbered:04d}", 1
                    note: tuple[BillLine, ...] = ()
                    diff: Decimal | None = None
                else:
                    number, revision = last.number, last.revision + 1
                    note, diff = note_lines(last.bill, b), b.total - last.bill.total
                text = canonical_json(
                    {
                        "site": self.site,
                        "number": number,
                        "revision": revision,
                        "period": period,
                        "issued_at": as_utc(now).isoformat(),
                        "bill": bill_dict(b),
                        "tariff_version": item.tariff_version,
                        "readings": item.readings,
                        "carry_out": item.carry_out,
                        "note": [line_dict(x) for x in note],
                        "difference": None if diff is None else str(diff),
                    }
                )
                digest = sha256(text)
                rows.append(
                    {
                        "site": self.site,
                        "customer": b.customer,
                        "period": period,
                        "revision": revision,
                        "number": number,
                        "issued_at": as_utc(now),
                        "document": text,
                        "content_hash": digest,
                    }
                )
                out.append((self._of(text, digest), "issued" if revision == 1 else "revised"))
            if rows:
                try:
                    conn.execute(issued_bills.insert(), rows)
                except sa.exc.IntegrityError as err:
                    raise StoreError(
                        f"another billing run of {period} issued bills at the same time; this "
                        "one issued nothing: run it again"
                    ) from err
        return out

    def latest(self, customer: str, period: str) -> IssuedBill | None:
        """The newest revision of the customer's bill for ``period``; None if none issued."""
        with self.store.engine.connect() as conn:
            return self._newest(conn, customer, period)

    def newest(self, period: str) -> dict[str, IssuedBill]:
        """The newest revision of every customer's bill for ``period``, by customer."""
        t = issued_bills.c
        q = sa.select(t.customer, t.revision, t.document, t.content_hash).where(
            t.site == self.site, t.period == period
        )
        with self.store.engine.connect() as conn:
            found: dict[str, tuple[int, str, str]] = {}
            for customer, revision, doc, digest in conn.execute(q):
                if revision > found.get(customer, (0, "", ""))[0]:
                    found[customer] = (revision, doc, digest)
        return {c: self._of(doc, digest) for c, (_, doc, digest) in found.items()}

    def revisions(self, customer: str, period: str) -> list[IssuedBill]:
        """Every revision of the customer's bill for ``period``, the first first."""
        t = issued_bills.c
        q = (
            sa.select(t.document, t.content_hash)
            .where(t.site == self.site, t.customer == customer, t.period == period)
            .order_by(t.revision)
        )
        with self.store.engine.connect() as conn:
            return [self._of(doc, digest) for doc, digest in conn.execute(q).all()]

    def _newest(self, conn: sa.Connection, customer: str, period: str) -> IssuedBill | None:
        t = issued_bills.c
        row = conn.execute(
            sa.select(t.document, t.content_hash)
            .where(t.site == self.site, t.customer == customer, t.period == period)
            .order_by(t.revision.desc())
            .limit(1)
        ).first()
        return None if row is None else self._of(row[0], row[1])

    def _of(self, document: str, content_hash: str) -> IssuedBill:
        if sha256(document) != content_hash:
            raise StoreError(
                f"an issued bill in the store no longer matches its content hash {content_hash}:"
                " the store was altered outside openmeg; restore it from a backup"
            )
        d = json.loads(document)
        return IssuedBill(
            number=d["number"],
            revision=d["revision"],
            period=d["period"],
            bill=bill_of(d["bill"], self.timezone),
            issued_at=datetime.fromisoformat(d["issued_at"]),
            tariff_version=d["tariff_version"],
            readings=d["readings"],
            carry_out=d["carry_out"],
            note=tuple(line_of(x) for x in d["note"]),
            difference=None if d["difference"] is None else Decimal(d["difference"]),
            content_hash=content_hash,
        )
