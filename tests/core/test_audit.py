"""The keyed audit chain: an edit, a deletion (in the middle, at the end), a reordering, a full
rewrite (with plain hashes or under another key), a replaced or deleted head, and a truncation
back to an older genuine head (against an anchor) are all detected and named, on SQLite and
PostgreSQL; a log from before keying verifies as an unkeyed segment; ``openmeg audit`` too."""

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

from openmeg.cli import app
from openmeg.core.audit import (
    Anchor,
    AuditEntry,
    AuditLog,
    audit_head,
    audit_log,
    record_hash,
    record_mac,
)
from openmeg.core.audit_chain import head_mac
from openmeg.core.store import Store, sqlite_url
from tests.keys import env_keystore

T = datetime(2026, 6, 1, 12, tzinfo=UTC)
KEY = bytes(range(32))
OTHER = bytes(range(1, 33))
BROKEN_AT_4 = (
    "record 4: the chain is broken before it (a record before it was deleted, reordered or altered)"
)
UNSEALED = (
    "the head is not sealed under the audit key: the log is from before audit records were keyed "
    "(the next record seals it), or its head was replaced (check it against an anchor: openmeg "
    "audit verify --anchor)"
)


def _log(store: Store, key: bytes = KEY, n: int = 5) -> AuditLog:
    log = AuditLog(store, key)
    for i in range(n):
        log.append(
            ts=T + timedelta(minutes=i),
            actor="op",
            action="command",
            target=f"bess-h01/p_set_kw#{i + 1}",
            detail={"value": float(i)},
        )
    return log


def _sql(store: Store, stmt: sa.Executable) -> None:
    with store.engine.begin() as conn:
        conn.execute(stmt)


def _rows(store: Store) -> list[Any]:
    with store.engine.connect() as conn:
        return list(conn.execute(sa.select(audit_log).order_by(audit_log.c.seq)).all())


def _head(store: Store) -> Any:
    with store.engine.connect() as conn:
        return conn.execute(sa.select(audit_head)).one()


def _rewrite(store: Store, digest: Any, *, head: str | None) -> None:
    """Every record's detail changed and the chain recomputed with ``digest``; the head set to
    the new end with the MAC ``head`` (None: left out)."""
    prev = "0" * 64
    for r in _rows(store):
        detail = '{"value":99.0}'
        h = digest(r.seq, r.ts, r.actor, r.action, r.target, detail, prev)
        _sql(
            store,
            audit_log.update()
            .where(audit_log.c.seq == r.seq)
            .values(detail=detail, prev_hash=prev, hash=h),
        )
        prev = h
    _sql(store, audit_head.update().values(hash=prev, mac=head))


def test_an_intact_log_verifies(store: Store) -> None:
    log = _log(store)
    assert log.verify() == []
    assert [r.seq for r in log.records()] == [1, 2, 3, 4, 5]
    assert log.count() == 5
    assert log.records(after=3)[0].target == "bess-h01/p_set_kw#4"
    h = _head(store)
    assert (h.seq, h.keyed_from, h.hash) == (5, 1, log.records()[-1].hash)
    assert h.mac == head_mac(KEY, 5, h.hash, 1)


def test_a_group_commit_chains_exactly_as_records_appended_one_by_one(tmp_path: Path) -> None:
    one_by_one = Store(sqlite_url(tmp_path / "one.db"))
    _log(one_by_one, n=5)
    grouped = Store(sqlite_url(tmp_path / "group.db"))
    log = _log(grouped, n=2)
    entries = [
        AuditEntry(
            ts=T + timedelta(minutes=i),
            actor="op",
            action="command",
            target=f"bess-h01/p_set_kw#{i + 1}",
            detail={"value": float(i)},
        )
        for i in (2, 3, 4)
    ]
    records = log.append_many(entries)
    assert [r.seq for r in records] == [3, 4, 5]
    assert [tuple(r) for r in _rows(grouped)] == [tuple(r) for r in _rows(one_by_one)]
    assert tuple(_head(grouped)) == tuple(_head(one_by_one))
    assert log.verify() == [] and log.append_many([]) == [] and log.count() == 5
    one_by_one.engine.dispose()
    grouped.engine.dispose()


def test_a_short_key_is_refused(store: Store) -> None:
    with pytest.raises(ValueError, match=r"at least 32 bytes"):
        AuditLog(store, b"short")


def test_an_edited_record_is_found(store: Store) -> None:
    log = _log(store)
    _sql(store, audit_log.update().where(audit_log.c.seq == 3).values(detail='{"value":9.0}'))
    assert log.verify() == ["record 3 was edited (the contents do not match the MAC)"]


def test_an_edit_that_recomputes_its_own_plain_hash_is_found(store: Store) -> None:
    log = _log(store)
    r = _rows(store)[2]
    forged = record_hash(3, r.ts, "op", "command", r.target, '{"value":9.0}', r.prev_hash)
    _sql(
        store,
        audit_log.update().where(audit_log.c.seq == 3).values(detail='{"value":9.0}', hash=forged),
    )
    assert log.verify() == [
        "record 3 was rewritten with plain hashes, not under the audit key",
        BROKEN_AT_4,
    ]


def test_a_deleted_record_is_found(store: Store) -> None:
    log = _log(store)
    _sql(store, audit_log.delete().where(audit_log.c.seq == 3))
    assert log.verify() == ["record 3 deleted (the log goes on at 4)", BROKEN_AT_4]


def test_records_deleted_from_the_end_are_found(store: Store) -> None:
    log = _log(store)
    _sql(store, audit_log.delete().where(audit_log.c.seq >= 4))
    assert log.verify() == ["records 4-5 were deleted from the end (the head holds 5)"]


def test_reordered_records_are_found(store: Store) -> None:
    log = _log(store)
    c = audit_log.c
    _sql(store, audit_log.update().where(c.seq == 2).values(seq=99))
    _sql(store, audit_log.update().where(c.seq == 3).values(seq=2))
    _sql(store, audit_log.update().where(c.seq == 99).values(seq=3))
    problems = log.verify()
    assert "records 2-3 were edited (the contents do not match the MAC)" in problems
    assert any(p.startswith("record 2: the chain is broken") for p in problems)


def test_a_full_rewrite_with_plain_hashes_is_found(store: Store) -> None:
    log = _log(store)
    _rewrite(store, record_hash, head=None)
    assert log.verify() == [
        "records 1-5 were rewritten: the whole chain was recomputed with plain hashes, "
        "not under the audit key",
        "the head was replaced (it carries no MAC)",
    ]


def test_a_full_rewrite_under_another_key_is_found(store: Store) -> None:
    log = _log(store)

    def other(*args: Any) -> str:
        return record_mac(OTHER, *args)

    last = len(_rows(store))
    _rewrite(store, other, head="0" * 64)
    _sql(store, audit_head.update().values(mac=head_mac(OTHER, last, _head(store).hash, 1)))
    assert log.verify() == [
        "records 1-5 were rewritten: not one authenticates under this site's audit key "
        "(the chain was recomputed under another key)",
        "the head was replaced (it does not authenticate under this site's audit key)",
    ]
    assert AuditLog(store, OTHER).verify() == []  # the forger's own key, of course, agrees


def test_a_replaced_head_is_found(store: Store) -> None:
    log = _log(store)
    r3 = _rows(store)[2]
    _sql(store, audit_log.delete().where(audit_log.c.seq > 3))
    _sql(store, audit_head.update().values(seq=3, hash=r3.hash))  # its MAC is for record 5
    assert log.verify() == [
        "the head was replaced (it does not authenticate under this site's audit key)"
    ]


def test_a_deleted_head_is_found(store: Store) -> None:
    log = _log(store)
    _sql(store, audit_head.delete())
    [problem] = log.verify()
    assert problem.startswith("the head is missing (deleted): nothing vouches for the end")


def test_a_truncation_back_to_an_older_head_is_caught_by_the_anchor(store: Store) -> None:
    log = _log(store, n=3)
    old_head = dict(_head(store)._mapping)
    for i in (4, 5):
        log.append(ts=T + timedelta(minutes=i), actor="op", action="login", target="user")
    anchor = Anchor.from_json(log.anchor(T + timedelta(hours=1)).to_json())
    assert (anchor.seq, anchor.ts) == (5, (T + timedelta(minutes=5)).isoformat())
    assert log.verify_anchor(anchor) == []
    _sql(store, audit_log.delete().where(audit_log.c.seq > 3))
    _sql(store, audit_head.update().values(**old_head))  # the genuine head of record 3
    assert log.verify() == []  # nothing in the database can tell
    assert log.verify_anchor(anchor) == [
        "the log ends at record 3, but the anchor taken 2026-06-01T13:00:00+00:00 holds "
        "record 5: records 4-5 were deleted from the end"
    ]


def test_the_anchor_catches_a_rewrite_and_refuses_a_forged_anchor(store: Store) -> None:
    log = _log(store)
    anchor = log.anchor(T)
    _rewrite(store, record_hash, head=None)
    assert log.verify_anchor(anchor) == [
        "record 5 is not the one the anchor taken 2026-06-01T12:00:00+00:00 holds: "
        "the log was changed or rewritten since"
    ]
    forged = Anchor(seq=2, hash=anchor.hash, ts=anchor.ts, taken_at=anchor.taken_at, mac=anchor.mac)
    assert log.verify_anchor(forged) == [
        "the anchor does not authenticate under this site's audit key "
        "(it was altered, or it is another site's)"
    ]
    with pytest.raises(ValueError, match=r"not an audit anchor"):
        Anchor.from_json('{"seq": 1}')


def test_a_log_from_before_keying_is_an_unkeyed_segment_sealed_by_the_next_record(
    store: Store,
) -> None:
    """A store from before the keyed chain: its head table without the MAC columns, its records
    with plain hashes. They verify as an unkeyed segment; the first keyed record seals them."""
    with store.engine.begin() as conn:
        audit_head.drop(conn)
        conn.execute(
            sa.text(
                "CREATE TABLE audit_head (id INTEGER PRIMARY KEY, seq INTEGER "
                "NOT NULL, hash VARCHAR(64) NOT NULL)"
            )
        )
    prev = "0" * 64
    for seq in (1, 2, 3):
        h = record_hash(seq, T, "op", "login", "user", "{}", prev)
        row = dict(seq=seq, ts=T, actor="op", action="login", target="user", detail="{}")
        _sql(store, audit_log.insert().values(**row, prev_hash=prev, hash=h))
        prev = h
    _sql(store, sa.text(f"INSERT INTO audit_head (id, seq, hash) VALUES (1, 3, '{prev}')"))
    log = AuditLog(store, KEY)
    assert log.verify() == [UNSEALED]
    log.append(ts=T, actor="op", action="login", target="user")
    assert log.verify() == []
    assert (_head(store).keyed_from, _head(store).seq) == (4, 4)
    _sql(store, audit_log.update().where(audit_log.c.seq == 2).values(actor="nobody"))
    assert log.verify() == [
        "record 2 was edited (unkeyed, from before the audit key: the contents do not match "
        "the hash)"
    ]


def test_stripping_the_head_of_a_keyed_log_is_found(store: Store) -> None:
    log = _log(store)
    _sql(store, audit_head.update().values(mac=None, keyed_from=None))
    _sql(store, audit_log.update().where(audit_log.c.seq == 4).values(actor="nobody"))
    assert log.verify() == ["record 4 was edited (the contents do not match the MAC)", UNSEALED]


def test_audit_verify_and_anchor_commands(tmp_path: Path) -> None:
    url = sqlite_url(tmp_path / "meg.db")
    db = Store(url)
    db.create_schema()
    log = _log(db, env_keystore().secret("audit/hmac"), n=3)
    runner = CliRunner()
    ok = runner.invoke(app, ["audit", "verify", "--store", url])
    assert ok.exit_code == 0 and "intact: 3 records" in ok.stdout
    old_head = dict(_head(db)._mapping)
    for i in (4, 5):
        log.append(ts=T + timedelta(minutes=i), actor="op", action="login", target="user")
    anchor = tmp_path / "anchor.json"
    made = runner.invoke(app, ["audit", "anchor", "--store", url, "--out", str(anchor)])
    assert made.exit_code == 0 and "anchor of record 5 written" in made.stdout
    printed = runner.invoke(app, ["audit", "anchor", "--store", url])
    assert Anchor.from_json(printed.stdout).seq == 5
    held = runner.invoke(app, ["audit", "verify", "--store", url, "--anchor", str(anchor)])
    assert held.exit_code == 0 and "holding the anchor of record 5" in held.stdout
    _sql(db, audit_log.delete().where(audit_log.c.seq > 3))
    _sql(db, audit_head.update().values(**old_head))
    assert runner.invoke(app, ["audit", "verify", "--store", url]).exit_code == 0
    cut = runner.invoke(app, ["audit", "verify", "--store", url, "--anchor", str(anchor)])
    assert cut.exit_code == 1
    assert "the log ends at record 3" in cut.stdout and "records 4-5 were deleted" in cut.stdout
    _sql(db, audit_log.update().where(audit_log.c.seq == 2).values(actor="nobody"))
    db.close()
    bad = runner.invoke(app, ["audit", "verify", "--store", url])
    assert bad.exit_code == 1
    assert bad.stdout == "record 2 was edited (the contents do not match the MAC)\n"
    refused = runner.invoke(app, ["audit", "anchor", "--store", url])
    assert refused.exit_code == 1 and "not intact: no anchor taken" in refused.stderr
    anchor.write_text("{}")
    garbled = runner.invoke(app, ["audit", "verify", "--store", url, "--anchor", str(anchor)])
    assert garbled.exit_code == 2 and "not an audit anchor" in garbled.stderr


def test_a_sealed_log_refuses_a_keystore_without_its_key(store: Store, tmp_path: Path) -> None:
    from openmeg.core.audit import AuditKeyError, audit_log_of
    from tests.keys import test_keystore

    first = test_keystore(tmp_path / "site.keystore")
    audit_log_of(store, first).append(ts=T, actor="op", action="login", target="user")
    again = audit_log_of(store, first)  # the site's own keystore: the same key
    assert again.verify() == [] and again.count() == 1
    with pytest.raises(AuditKeyError, match=r"sealed under an audit key that the keystore"):
        audit_log_of(store, test_keystore(tmp_path / "another.keystore"))
