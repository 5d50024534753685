"""Users on the command line: added with a generated password shown once, listed, reset (the
old password stops working); every change audited."""

from pathlib import Path

import pytest
from typer.testing import CliRunner

from openmeg.cli import app
from openmeg.core.audit import AuditLog
from openmeg.core.identity import AuthError, Identities
from openmeg.core.store import Store, sqlite_url
from tests.keys import env_keystore


def test_add_list_and_reset(tmp_path: Path) -> None:
    url = sqlite_url(tmp_path / "meg.db")
    run = CliRunner().invoke
    added = run(
        app, ["users", "add", "alice", "--role", "prosumer", "--customer", "h01", "--store", url]
    )
    assert added.exit_code == 0, added.stderr
    first = added.stdout.split("password ")[1].split()[0]
    assert run(app, ["users", "list", "--store", url]).stdout == "alice: prosumer of h01\n"
    reset = run(app, ["users", "reset", "alice", "--store", url])
    assert reset.exit_code == 0
    second = reset.stdout.split("new password ")[1].split()[0]
    db = Store(url)
    ids = Identities(db)
    assert ids.authenticate("alice", second).customer == "h01"
    with pytest.raises(AuthError):
        ids.authenticate("alice", first)
    log = AuditLog(db, env_keystore().secret("audit/hmac"))
    assert [r.target for r in log.records()] == ["user/alice", "password/alice"]
    assert log.verify() == []  # keyed with the keystore's audit key
    db.close()
    for bad, message in (
        (["users", "reset", "bob"], "no user or client 'bob'"),
        (["users", "add", "carol", "--role", "king"], "role 'king'"),
        (["users", "add", "dave", "--role", "prosumer"], "give their customer id"),
        (["users", "add", "erin", "--role", "prosumer", "--customer", "zz"], "unknown customer"),
        (["users", "add", "alice", "--role", "auditor"], "exists already"),
    ):
        done = run(app, [*bad, "--store", url])
        assert done.exit_code == 2 and message in done.stderr, (bad, done.stderr)
