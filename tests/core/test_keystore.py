"""The keystore: secrets sealed with AES-256-GCM under a KEK from a passphrase (argon2id), the
OS keyring or a development key file; a wrong passphrase and altered ciphertext are refused, the
file is mode 0600 and two processes writing at once lose nothing."""

from __future__ import annotations

import base64
import json
import logging
import os
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import keyring
import pytest
from keyring.backend import KeyringBackend
from keyring.backends import fail

from openmeg.core.keystore import KeyEncryptionKey, Keystore, KeystoreError, open_keystore
from openmeg.core.keystore_kek import FAST_KDF

PASS = "correct horse battery staple"


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def _kek(text: str = PASS) -> KeyEncryptionKey:
    return KeyEncryptionKey.passphrase(text, cost=FAST_KDF)


class MemoryKeyring(KeyringBackend):
    """A real keyring backend that keeps its passwords in memory."""

    priority = 1  # type: ignore[assignment]

    def __init__(self) -> None:
        super().__init__()
        self.passwords: dict[tuple[str, str], str] = {}

    def get_password(self, service: str, username: str) -> str | None:
        return self.passwords.get((service, username))

    def set_password(self, service: str, username: str, password: str) -> None:
        self.passwords[(service, username)] = password

    def delete_password(self, service: str, username: str) -> None:
        del self.passwords[(service, username)]


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """No passphrase, no keyring, a private configuration folder, cheap argon2id."""
    before = keyring.get_keyring()
    keyring.set_keyring(fail.Keyring())
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    monkeypatch.setenv("OPENMEG_KEYSTORE_KDF", "fast")
    monkeypatch.delenv("OPENMEG_KEYSTORE_PASSPHRASE", raising=False)
    monkeypatch.delenv("OPENMEG_KEYSTORE", raising=False)
    try:
        yield tmp_path
    finally:
        keyring.set_keyring(before)


def test_secrets_round_trip_and_are_not_in_the_file(tmp_path: Path) -> None:
    path = tmp_path / "site.keystore"
    ks = Keystore.open(path, _kek())
    made = ks.secret("jwt/signing")
    assert len(made) == 32 and ks.secret("jwt/signing") == made
    assert len(ks.secret("audit/hmac", size=48)) == 48
    ks.put("mqtt/feeder", "pässword".encode())
    assert ks.get("nothing") is None
    again = Keystore.open(path, _kek())
    assert again.get("jwt/signing") == made
    assert again.get("mqtt/feeder") == "pässword".encode()
    assert again.names() == ["audit/hmac", "jwt/signing", "mqtt/feeder"]
    text = path.read_bytes()
    for form in (made, made.hex().encode(), base64.b64encode(made), PASS.encode()):
        assert form not in text
    assert _mode(path) == 0o600
    assert _mode(path.with_name(path.name + ".lock")) == 0o600


def test_a_wrong_passphrase_is_refused_clearly(tmp_path: Path) -> None:
    path = tmp_path / "site.keystore"
    Keystore.open(path, _kek()).secret("jwt/signing")
    with pytest.raises(KeystoreError, match=r"cannot be opened with this passphrase"):
        Keystore.open(path, _kek("not the passphrase at all"))


def test_altered_or_swapped_ciphertext_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "site.keystore"
    ks = Keystore.open(path, _kek())
    ks.secret("jwt/signing")
    ks.secret("audit/hmac")
    data = json.loads(path.read_text())
    raw = bytearray(base64.b64decode(data["secrets"]["jwt/signing"]))
    raw[20] ^= 1
    data["secrets"]["jwt/signing"] = base64.b64encode(bytes(raw)).decode()
    path.write_text(json.dumps(data))
    with pytest.raises(KeystoreError, match=r"'jwt/signing' .* was altered"):
        ks.get("jwt/signing")
    s = data["secrets"]
    s["jwt/signing"] = s["audit/hmac"]  # a valid ciphertext under another name
    path.write_text(json.dumps(data))
    with pytest.raises(KeystoreError, match=r"'jwt/signing' .* was altered"):
        ks.get("jwt/signing")


def test_default_argon2id_cost_is_kept_in_the_file(tmp_path: Path) -> None:
    path = tmp_path / "site.keystore"
    Keystore.open(path, KeyEncryptionKey.passphrase(PASS))
    kek = json.loads(path.read_text())["kek"]
    assert (kek["kdf"], kek["time_cost"], kek["memory_kib"], kek["parallelism"]) == (
        "argon2id",
        3,
        65536,
        4,
    )
    assert len(base64.b64decode(kek["salt"])) == 16


def test_a_keystore_readable_by_others_is_tightened(tmp_path: Path) -> None:
    path = tmp_path / "site.keystore"
    Keystore.open(path, _kek()).secret("jwt/signing")
    path.chmod(0o644)
    Keystore.open(path, _kek())
    assert _mode(path) == 0o600


_WRITER = """
import sys
from pathlib import Path
from openmeg.core.keystore import KeyEncryptionKey, Keystore
from openmeg.core.keystore_kek import FAST_KDF
ks = Keystore.open(Path(sys.argv[1]), KeyEncryptionKey.passphrase(sys.argv[2], cost=FAST_KDF))
print(ks.secret("shared").hex())
for i in range(40):
    ks.put(f"{sys.argv[3]}/{i}", bytes([i]))
"""


def test_two_processes_writing_at_once_lose_nothing(tmp_path: Path) -> None:
    path = tmp_path / "site.keystore"
    Keystore.open(path, _kek())
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parents[2])}
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", _WRITER, str(path), PASS, who],
            stdout=subprocess.PIPE,
            env=env,
        )
        for who in ("a", "b")
    ]
    outs = [p.communicate(timeout=60)[0].decode().strip() for p in procs]
    assert [p.returncode for p in procs] == [0, 0]
    ks = Keystore.open(path, _kek())
    assert outs[0] == outs[1] == ks.get("shared").hex()  # type: ignore[union-attr]
    assert len(ks.names()) == 81
    assert ks.get("a/39") == bytes([39]) and ks.get("b/0") == bytes([0])


def test_the_os_keyring_keeps_a_random_kek(env: Path) -> None:
    ring = MemoryKeyring()
    keyring.set_keyring(ring)
    path = env / "site.keystore"
    ks = open_keystore(path, site_id="demo")
    assert ks.source == "keyring"
    value = ks.secret("jwt/signing")
    [(service, user)] = ring.passwords
    assert (service, user) == ("openmeg", "keystore-kek/demo")
    assert len(base64.b64decode(ring.passwords[(service, user)])) == 32
    assert open_keystore(path, site_id="demo").get("jwt/signing") == value
    ring.passwords.clear()
    with pytest.raises(KeystoreError, match=r"OS keyring, and the keyring has none"):
        open_keystore(path, site_id="demo")


def test_without_keyring_or_passphrase_a_development_key_outside_the_folder(
    env: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.chdir(env)
    with caplog.at_level(logging.WARNING, logger="openmeg.keystore"):
        ks = open_keystore(site_id="demo")
    assert ks.path == Path("openmeg-demo.keystore") and ks.source == "file"
    [warning] = [r.getMessage() for r in caplog.records]
    assert "development key" in warning and "OPENMEG_KEYSTORE_PASSPHRASE" in warning
    kek_file = env / "config" / "openmeg" / "keystore-kek-demo"
    assert _mode(kek_file) == 0o600 and _mode(kek_file.parent) == 0o700
    value = ks.secret("jwt/signing")
    assert open_keystore(site_id="demo").get("jwt/signing") == value
    # a passphrase set later seals it again under the passphrase
    monkeypatch.setenv("OPENMEG_KEYSTORE_PASSPHRASE", PASS)
    assert open_keystore(site_id="demo").source == "passphrase"
    assert open_keystore(site_id="demo").get("jwt/signing") == value
    monkeypatch.delenv("OPENMEG_KEYSTORE_PASSPHRASE")
    with pytest.raises(KeystoreError, match=r"sealed with a passphrase: set OPENMEG_KEYSTORE_PASS"):
        open_keystore(site_id="demo")
    monkeypatch.setenv("OPENMEG_KEYSTORE_PASSPHRASE", "a wrong passphrase")
    with pytest.raises(KeystoreError, match=r"cannot be opened with this passphrase"):
        open_keystore(site_id="demo")


def test_the_keystore_place_comes_from_the_environment(
    env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENMEG_KEYSTORE", str(env / "elsewhere.keystore"))
    monkeypatch.setenv("OPENMEG_KEYSTORE_PASSPHRASE", PASS)
    ks = open_keystore(site_id="demo")
    assert ks.path == env / "elsewhere.keystore" and _mode(ks.path) == 0o600


def test_a_file_that_is_not_a_keystore_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "site.keystore"
    path.write_text("{}")
    with pytest.raises(KeystoreError, match=r"is not an openmeg keystore"):
        Keystore.open(path, _kek())
