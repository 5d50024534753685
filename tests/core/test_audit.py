"""The hash-chained audit log: an edit, a deletion (in the middle, at the end) and a reordering
of records are all detected, and ``verify`` says where; ``openmeg audit verify`` too."""

from datetime import UTC, datetime, timedelta
from pathlib import Path

import sqlalchemy as sa
from typer.testing import CliRunner

from openmeg.cli import app
from openmeg.core.audit import AuditLog, audit_log
from openmeg.core.store import Store, sqlite_url

T = datetime(2026, 6, 1, 12, tzinfo=UTC)


def _log(store: Store) -> AuditLog:
    log = AuditLog(store)
    for i in range(5):
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


def test_an_intact_log_verifies(store: Store) -> None:
    log = _log(store)
    assert log.verify() == []
    assert [r.seq for r in log.records()] == [1, 2, 3, 4, 5]
    assert log.count() == 5
    assert log.records(after=3)[0].target == "bess-h01/p_set_kw#4"


def test_an_edited_record_is_found(store: Store) -> None:
    log = _log(store)
    _sql(store, audit_log.update().where(audit_log.c.seq == 3).values(detail='{"value":9.0}'))
    assert log.verify() == ["record 3 was edited (its contents do not match its hash)"]


def test_an_edit_that_also_fixes_its_own_hash_breaks_the_next_link(store: Store) -> None:
    from openmeg.core.audit import record_hash

    log = _log(store)
    r = log.records()[2]
    forged = record_hash(3, T, "op", "command", r.target, '{"value":9.0}', log.records()[1].hash)
    _sql(
        store,
        audit_log.update()
        .where(audit_log.c.seq == 3)
        .values(detail='{"value":9.0}', ts=T, hash=forged),
    )
    problems = log.verify()
    assert problems and problems[0].startswith("record 4: the chain is broken")


def test_a_deleted_record_is_found(store: Store) -> None:
    log = _log(store)
    _sql(store, audit_log.delete().where(audit_log.c.seq == 3))
    assert log.verify() == [
        "record 3 deleted (the log goes on at 4)",
        "record 4: the chain is broken before it "
        "(a record before it was deleted, reordered or altered)",
    ]


def test_records_deleted_from_the_end_are_found(store: Store) -> None:
    log = _log(store)
    _sql(store, audit_log.delete().where(audit_log.c.seq >= 4))
    assert log.verify() == ["records 4-5 deleted from the end"]


def test_reordered_records_are_found(store: Store) -> None:
    log = _log(store)
    c = audit_log.c
    _sql(store, audit_log.update().where(c.seq == 2).values(seq=99))
    _sql(store, audit_log.update().where(c.seq == 3).values(seq=2))
    _sql(store, audit_log.update().where(c.seq == 99).values(seq=3))
    problems = log.verify()
    assert any(p.startswith("record 2") for p in problems)
    assert any(p.startswith("record 3") for p in problems)


def test_audit_verify_command(tmp_path: Path) -> None:
    url = sqlite_url(tmp_path / "meg.db")
    db = Store(url)
    db.create_schema()
    _log(db)
    runner = CliRunner()
    ok = runner.invoke(app, ["audit", "verify", "--store", url])
    assert ok.exit_code == 0 and "intact: 5 records" in ok.stdout
    _sql(db, audit_log.delete().where(audit_log.c.seq == 2))
    db.close()
    bad = runner.invoke(app, ["audit", "verify", "--store", url])
    assert bad.exit_code == 1
    assert "record 2 deleted (the log goes on at 3)" in bad.stdout
