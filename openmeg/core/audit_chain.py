"""The keyed audit chain, pure: each record's hash is an HMAC-SHA256 under the site's audit key
over its sequence number, its fields and the hash before it; the head (last sequence number and
hash, and where the keyed records begin) has an HMAC of its own, and so has an anchor of the head
kept off the machine. Verification names every break and where it is.

Records written before the chain was keyed (``seq < keyed_from``) keep their plain SHA-256 hashes
and are checked as such: an unkeyed segment at the start, sealed by the first keyed head."""

from __future__ import annotations

import hashlib
import hmac
import json
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any, Protocol

GENESIS = "0" * 64
ANCHOR_FORMAT = "openmeg-audit-anchor/1"


class Row(Protocol):
    seq: int
    ts: datetime
    actor: str
    action: str
    target: str
    detail: str
    prev_hash: str
    hash: str


def _text(seq: int, ts: datetime, actor: str, action: str, target: str, detail: str) -> str:
    from openmeg.core.store import as_utc

    return "\x1f".join([str(seq), as_utc(ts).isoformat(), actor, action, target, detail])


def record_hash(
    seq: int, ts: datetime, actor: str, action: str, target: str, detail: str, prev_hash: str
) -> str:
    """The plain SHA-256 of a record (records from before the chain was keyed)."""
    text = _text(seq, ts, actor, action, target, detail) + "\x1f" + prev_hash
    return hashlib.sha256(text.encode()).hexdigest()


def _mac(key: bytes, *parts: object) -> str:
    msg = "\x1f".join(str(p) for p in parts).encode()
    return hmac.new(key, msg, hashlib.sha256).hexdigest()


def record_mac(
    key: bytes,
    seq: int,
    ts: datetime,
    actor: str,
    action: str,
    target: str,
    detail: str,
    prev_hash: str,
) -> str:
    """The HMAC-SHA256 of a record under the audit key ``key``."""
    return _mac(
        key, "openmeg-audit/record", _text(seq, ts, actor, action, target, detail), prev_hash
    )


def head_mac(key: bytes, seq: int, last_hash: str, keyed_from: int) -> str:
    """The HMAC of the head: the last record's number and hash, and the first keyed record."""
    return _mac(key, "openmeg-audit/head", seq, last_hash, keyed_from)


def _span(a: int, b: int) -> str:
    return f"record {a}" if a == b else f"records {a}-{b}"


def _were(a: int, b: int) -> str:
    return f"record {a} was" if a == b else f"records {a}-{b} were"


def _authentic(key: bytes, r: Row, keyed: bool) -> str | None:
    """None if ``r`` authenticates; else how it fails: legacy, plain or mac."""
    args = (r.seq, r.ts, r.actor, r.action, r.target, r.detail, r.prev_hash)
    plain = record_hash(*args) == r.hash
    if not keyed:
        return None if plain else "legacy"
    if hmac.compare_digest(record_mac(key, *args), r.hash):
        return None
    return "plain" if plain else "mac"


def _run_message(kind: str, a: int, b: int, whole: bool) -> str:
    if kind == "legacy":
        return (
            f"{_were(a, b)} edited (unkeyed, from before the audit key: "
            "the contents do not match the hash)"
        )
    if kind == "plain":
        if whole:
            return (
                f"{_were(a, b)} rewritten: the whole chain was recomputed with plain hashes, "
                "not under the audit key"
            )
        return f"{_were(a, b)} rewritten with plain hashes, not under the audit key"
    if whole and b > a:
        return (
            f"{_were(a, b)} rewritten: not one authenticates under this site's audit key "
            "(the chain was recomputed under another key)"
        )
    return f"{_were(a, b)} edited (the contents do not match the MAC)"


def verify_chain(rows: list[Row], head: Any | None, key: bytes) -> list[str]:
    """Every break of the chain ``rows`` (in seq order) with its ``head`` row; empty if intact."""
    found: list[tuple[int, str]] = []
    keyed_from = _keyed_from(rows, head, key)
    failures: list[tuple[int, str]] = []
    expected_seq, prev = 1, GENESIS
    for r in rows:
        if r.seq > expected_seq:
            gone = _span(expected_seq, r.seq - 1)
            found.append((r.seq, f"{gone} deleted (the log goes on at {r.seq})"))
        elif r.seq < expected_seq:
            found.append((r.seq, f"record {r.seq} out of order (after {expected_seq - 1})"))
        if r.prev_hash != prev:
            found.append(
                (
                    r.seq,
                    f"record {r.seq}: the chain is broken before it "
                    "(a record before it was deleted, reordered or altered)",
                )
            )
        kind = _authentic(key, r, r.seq >= keyed_from)
        if kind is not None:
            failures.append((r.seq, kind))
        expected_seq, prev = r.seq + 1, r.hash
    keyed = [r.seq for r in rows if r.seq >= keyed_from]
    i = 0
    while i < len(failures):
        j = i
        while (
            j + 1 < len(failures)
            and failures[j + 1][1] == failures[i][1]
            and failures[j + 1][0] == failures[j][0] + 1
        ):
            j += 1
        a, b = failures[i][0], failures[j][0]
        whole = bool(keyed) and (a, b) == (keyed[0], keyed[-1])
        found.append((a, _run_message(failures[i][1], a, b, whole)))
        i = j + 1
    found.sort(key=lambda p: p[0])
    problems = [m for _, m in found]
    problems += _head_problems(rows, head, key)
    return problems


def _keyed_from(rows: list[Row], head: Any | None, key: bytes) -> int:
    """The first keyed record: the head's word; for an unsealed head (a log from before
    keying), the first record that authenticates under the key, if any."""
    if head is None:
        return 1
    if head.keyed_from is not None:
        return int(head.keyed_from)
    first = next((r.seq for r in rows if _authentic(key, r, True) is None), None)
    return first if first is not None else head.seq + 1


def _head_problems(rows: list[Row], head: Any | None, key: bytes) -> list[str]:
    last_seq, last_hash = (rows[-1].seq, rows[-1].hash) if rows else (0, GENESIS)
    if head is None:
        if not rows:
            return []
        return [
            "the head is missing (deleted): nothing vouches for the end of the log, records may "
            "have been deleted from it (check against an anchor: openmeg audit verify --anchor)"
        ]
    if head.mac is None and head.keyed_from is None:
        return [
            "the head is not sealed under the audit key: the log is from before audit records "
            "were keyed (the next record seals it), or its head was replaced (check it against "
            "an anchor: openmeg audit verify --anchor)"
        ]
    if head.mac is None or head.keyed_from is None:
        return ["the head was replaced (it carries no MAC)"]
    good = head_mac(key, head.seq, head.hash, head.keyed_from)
    if not hmac.compare_digest(good, head.mac):
        return ["the head was replaced (it does not authenticate under this site's audit key)"]
    if head.seq > last_seq:
        return [f"{_were(last_seq + 1, head.seq)} deleted from the end (the head holds {head.seq})"]
    if head.seq < last_seq:
        return [f"{_were(head.seq + 1, last_seq)} added after the head, without the audit key"]
    if head.hash != last_hash:
        return [f"record {last_seq} is not the one the head holds: it was replaced"]
    return []


@dataclass(frozen=True, kw_only=True)
class Anchor:
    """The head as it was at ``taken_at``, with an HMAC, to keep off the machine."""

    seq: int
    hash: str
    ts: str  # the record's time, ISO 8601 UTC
    taken_at: str
    mac: str

    @classmethod
    def of(cls, key: bytes, r: Row, taken_at: datetime) -> Anchor:
        from openmeg.core.store import as_utc

        ts, taken = as_utc(r.ts).isoformat(), as_utc(taken_at).isoformat()
        mac = _mac(key, ANCHOR_FORMAT, r.seq, r.hash, ts, taken)
        return cls(seq=r.seq, hash=r.hash, ts=ts, taken_at=taken, mac=mac)

    def to_json(self) -> str:
        return json.dumps({"format": ANCHOR_FORMAT, **asdict(self)}, indent=1) + "\n"

    @classmethod
    def from_json(cls, text: str) -> Anchor:
        """An anchor from its JSON text; ValueError saying what is wrong."""
        try:
            data = json.loads(text)
            if data.pop("format") != ANCHOR_FORMAT:
                raise ValueError(f"not an {ANCHOR_FORMAT}")
            return cls(**data)
        except (KeyError, TypeError, AttributeError, json.JSONDecodeError) as err:
            raise ValueError(f"not an audit anchor ({ANCHOR_FORMAT}): {err}") from err

    def problems(self, rows: list[Row], key: bytes) -> list[str]:
        """What in ``rows`` disagrees with this anchor; empty if the log still holds it."""
        good = _mac(key, ANCHOR_FORMAT, self.seq, self.hash, self.ts, self.taken_at)
        if not hmac.compare_digest(good, self.mac):
            return [
                "the anchor does not authenticate under this site's audit key "
                "(it was altered, or it is another site's)"
            ]
        last = rows[-1].seq if rows else 0
        match = [r for r in rows if r.seq == self.seq]
        if not match:
            if last < self.seq:
                return [
                    f"the log ends at record {last}, but the anchor taken {self.taken_at} holds "
                    f"record {self.seq}: {_were(last + 1, self.seq)} deleted from the end"
                ]
            return [f"record {self.seq}, held by the anchor taken {self.taken_at}, is missing"]
        from openmeg.core.store import as_utc

        r = match[0]
        if r.hash != self.hash or as_utc(r.ts).isoformat() != self.ts:
            return [
                f"record {self.seq} is not the one the anchor taken {self.taken_at} holds: "
                "the log was changed or rewritten since"
            ]
        return []
