"""Attacks on the keys and the audit chain: a token forged with a guessed key (all zeros, the
site's name, the plain key an older openmeg left in the store) is refused by the API, which goes
on unchanged; a full rewrite of the audit chain is found; and after a real run no key of the
keystore is anywhere in the store files, the logs or the working directory, and every store
file is readable by its owner only."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa
from cryptography.hazmat.primitives import serialization

from openmeg.core.audit import audit_head, audit_log, record_hash
from openmeg.core.keystore import open_keystore
from openmeg.core.store import Store, sqlite_url
from tests.api.harness import Harness
from tests.services import free_port

LEGACY_KEY = "5f" * 32  # as an older openmeg kept it: hex text in the signing_keys table


@pytest.fixture(scope="module")
def h(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Harness]:
    """The API on a store that an older openmeg left with its signing key in plain text."""
    tmp = tmp_path_factory.mktemp("keys-attack")
    engine = sa.create_engine(sqlite_url(tmp / "meg.db"))
    with engine.begin() as conn:
        conn.execute(sa.text("CREATE TABLE signing_keys (id INTEGER PRIMARY KEY, key TEXT)"))
        conn.execute(sa.text(f"INSERT INTO signing_keys VALUES (1, '{LEGACY_KEY}')"))
    engine.dispose()
    with Harness(tmp) as harness:
        yield harness


def _b64(data: bytes) -> bytes:
    return base64.urlsafe_b64encode(data).rstrip(b"=")


def _forged(key: str | bytes, **claims: object) -> str:
    """An HS256 token for ``mallory`` (operator) signed with ``key``, by hand (as an attacker
    would: no library's advice on short keys)."""
    now = int(time.time())
    body = {"sub": "mallory", "role": "operator", "aud": "openmeg-api", "iss": "demo"}
    body |= {"iat": now, "exp": now + 600, **claims}
    head = _b64(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
    signed = head + b"." + _b64(json.dumps(body).encode())
    raw = key.encode() if isinstance(key, str) else key
    return (signed + b"." + _b64(hmac.new(raw, signed, hashlib.sha256).digest())).decode()


@pytest.mark.parametrize(
    "key",
    [LEGACY_KEY, bytes(32), "demo", "secret", LEGACY_KEY.encode().hex()],
    ids=["legacy-plain-key", "all-zero", "site-name", "secret", "legacy-hex-of-hex"],
)
def test_a_token_forged_with_a_guessed_key_is_refused(h: Harness, key: str | bytes) -> None:
    with h.client("operator") as op:
        before = op.get("/api/v1/live").json()["mode"]
        count = len(h.api.services.audit.records(limit=100000))
    token = _forged(key)
    with httpx.Client(base_url=h.url, headers={"Authorization": f"Bearer {token}"}) as c:
        me = c.get("/api/v1/me")
        assert me.status_code == 401
        assert me.json()["detail"] == "the token is not valid: Signature verification failed"
        cmd = c.post(
            "/api/v1/commands", json={"device": "pcc", "name": "switch_command", "value": 1}
        )
        assert cmd.status_code == 401
    with h.client("operator") as op:  # the MEG goes on, unchanged, for its real users
        assert op.get("/api/v1/live").json()["mode"] == before
        records = h.api.services.audit.records(limit=100000)
        assert len(records) == count and all(r.actor != "mallory" for r in records)
        assert op.get("/api/v1/audit/verify").json() == {"intact": True, "problems": []}


def test_the_plain_key_of_an_older_openmeg_was_retired(h: Harness) -> None:
    assert not sa.inspect(h.store.engine).has_table("signing_keys")
    key = h.meg.keystore.get("jwt/signing")
    assert key is not None and len(key) == 32 and key != bytes.fromhex(LEGACY_KEY)
    with httpx.Client(base_url=h.url) as c:  # a token from the keystore's key is accepted
        ok = c.get("/api/v1/me", headers={"Authorization": f"Bearer {_forged(key)}"})
        assert ok.status_code == 200 and ok.json()["name"] == "mallory"


def test_a_full_rewrite_of_the_audit_chain_is_found(h: Harness) -> None:
    with h.client("operator") as op:
        assert op.get("/api/v1/alarms").status_code == 200
    with h.store.engine.connect() as conn:
        rows = conn.execute(sa.select(audit_log).order_by(audit_log.c.seq)).all()
    assert len(rows) >= 5  # the harness's logins at least
    saved = [dict(r._mapping) for r in rows]
    head = dict(h.store.engine.connect().execute(sa.select(audit_head)).one()._mapping)
    prev = "0" * 64
    try:
        with h.store.engine.begin() as conn:  # every actor renamed, the chain recomputed
            for r in rows:
                digest = record_hash(r.seq, r.ts, "nobody", r.action, r.target, r.detail, prev)
                conn.execute(
                    audit_log.update()
                    .where(audit_log.c.seq == r.seq)
                    .values(actor="nobody", prev_hash=prev, hash=digest)
                )
                prev = digest
            conn.execute(audit_head.update().values(hash=prev))
        with h.client("auditor") as aud:
            check = aud.get("/api/v1/audit/verify").json()
        n = len(rows)
        assert check == {
            "intact": False,
            "problems": [
                f"records 1-{n} were rewritten: the whole chain was recomputed with plain "
                "hashes, not under the audit key",
                "the head was replaced (it does not authenticate under this site's audit key)",
            ],
        }
    finally:  # put the genuine log back for the other tests
        with h.store.engine.begin() as conn:
            conn.execute(audit_log.delete())
            conn.execute(audit_log.insert(), saved)
            conn.execute(audit_head.update().values(**head))
    with h.client("auditor") as aud:
        assert aud.get("/api/v1/audit/verify").json()["intact"] is True


def _forms(secret: bytes) -> dict[str, bytes]:
    """The ways a secret's bytes could be written down."""
    out = {
        "raw": secret,
        "hex": secret.hex().encode(),
        "HEX": secret.hex().upper().encode(),
        "base64": base64.b64encode(secret).rstrip(b"="),
        "urlsafe base64": base64.urlsafe_b64encode(secret).rstrip(b"="),
    }
    if secret.startswith(b"-----BEGIN"):
        key = serialization.load_pem_private_key(secret, None)
        der = key.private_bytes(
            serialization.Encoding.DER,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        out |= {f"DER {k}": v for k, v in _forms(der).items()}
        scalar = key.private_numbers().private_value.to_bytes(32, "big")  # type: ignore[union-attr]
        out |= {"private scalar": scalar, "private scalar hex": scalar.hex().encode()}
        # the PEM body's lines holding the private scalar (each line is 48 bytes of the DER;
        # the last holds the public key, which the certificate shows by design)
        at = der.find(scalar)
        body = [ln for ln in secret.splitlines() if ln and not ln.startswith(b"-----")]
        out |= {
            f"PEM body line {i}": ln
            for i, ln in enumerate(body)
            if 48 * i < at + len(scalar) and at < 48 * (i + 1)
        }
    return out


def _run(args: list[str], cwd: Path, env: dict[str, str], log: Path) -> None:
    with log.open("a") as out:
        out.write(f"$ openmeg {' '.join(args)}\n")
        out.flush()
        done = subprocess.run(
            [sys.executable, "-m", "openmeg", *args],
            cwd=cwd,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            timeout=300,
            check=False,
        )
    assert done.returncode == 0, log.read_text()[-3000:]


@pytest.mark.slow
def test_after_a_run_no_key_is_in_the_store_logs_or_files(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Nothing configured (no passphrase, no keyring: the development key), as ``make run``."""
    work, config = tmp_path / "work", tmp_path / "config"
    work.mkdir()
    log = tmp_path / "run.log"  # outside the folder searched, searched too
    for name in ("OPENMEG_KEYSTORE", "OPENMEG_KEYSTORE_PASSPHRASE", "OPENMEG_KEYSTORE_KDF"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(config))
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    run = ["run", "--site", "demo", "--cycles", "30", "--speed", "60", "--no-status"]
    run += ["--modbus-port", "0", "--api-port", str(free_port()), "--tls-dir", "certs"]
    _run(["certs", "init", "--out", "certs"], work, env, log)
    _run(run, work, env, log)
    _run(["users", "add", "alice", "--role", "auditor"], work, env, log)
    _run(["audit", "anchor", "--out", "anchor.json"], work, env, log)
    _run(["audit", "verify", "--anchor", "anchor.json"], work, env, log)
    text = log.read_text()
    assert "sealed with a development key" in text and "stopped cleanly" in text
    assert "intact: 1 records, holding the anchor of record 1" in text

    keys = open_keystore(work / "openmeg-demo.keystore", site_id="demo")
    assert keys.source == "file"
    assert {"jwt/signing", "audit/hmac", "ca/key", "tls/server-key"} <= set(keys.names())
    kek_file = config / "openmeg" / "keystore-kek-demo"
    secrets = {n: keys.get(n) or b"" for n in keys.names()}
    secrets["the development KEK"] = base64.b64decode(kek_file.read_text())
    files = [p for p in work.rglob("*") if p.is_file()] + [log]
    names = {p.name for p in files}
    assert {"openmeg-demo.db", "openmeg-demo.keystore", "ca.pem", "server.pem"} <= names
    found = [
        f"{name} ({form}) in {path}"
        for path in files
        for data in [path.read_bytes()]
        for name, secret in secrets.items()
        for form, needle in _forms(secret).items()
        if needle in data
    ]
    assert found == []

    private = [p for p in files if p.name.startswith("openmeg-demo")]  # store, keystore, field
    assert {p.name for p in private} >= {
        "openmeg-demo.db",
        "openmeg-demo.keystore",
        "openmeg-demo-field.json",
    }
    modes = {p.name: stat.S_IMODE(p.stat().st_mode) for p in [*private, kek_file]}
    assert set(modes.values()) == {0o600}, modes
    assert stat.S_IMODE(kek_file.parent.stat().st_mode) == 0o700
    assert not (work / "certs" / "server.key").exists() and not (work / "certs" / "ca.key").exists()
    db = Store(sqlite_url(work / "openmeg-demo.db"))
    try:
        assert not sa.inspect(db.engine).has_table("signing_keys")
    finally:
        db.close()
