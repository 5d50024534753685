"""``openmeg mqtt init``: the broker's configuration written, its passwords in the keystore."""

import os
import subprocess
import sys
from pathlib import Path

from openmeg.core.bus_acl import COMPONENTS
from openmeg.core.keystore import Keystore
from openmeg.core.keystore_kek import KeyEncryptionKey

PASSPHRASE = "a passphrase for the test keystore"
ENV = {"OPENMEG_KEYSTORE_PASSPHRASE": PASSPHRASE}


def open_keystore(path: Path, *, site_id: str) -> Keystore:
    return Keystore.open(path, KeyEncryptionKey.passphrase(PASSPHRASE))


def _init(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, **ENV, "OPENMEG_KEYSTORE": str(tmp_path / "ks")}
    return subprocess.run(
        [sys.executable, "-m", "openmeg", "mqtt", "init", "--site", "S", "--out", "b", *args],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=env,
        timeout=60,
    )


def test_mqtt_init_writes_the_config_and_keeps_passwords_in_the_keystore(tmp_path: Path) -> None:
    done = _init(tmp_path, "--tls-port", "18883")
    assert done.returncode == 0, done.stderr
    out = tmp_path / "b"
    assert f"start the broker:  mosquitto -c {out / 'mosquitto.conf'}" in done.stdout
    assert f"--mqtt 127.0.0.1:18883 --mqtt-ca {out / 'tls' / 'ca.pem'}" in done.stdout
    keystore = open_keystore(tmp_path / "ks", site_id="S")
    passwords = {c.name: keystore.get(f"mqtt/{c.name}") for c in COMPONENTS}
    assert all(p and len(p) >= 24 for p in passwords.values())
    assert (out / "passwd").stat().st_mode & 0o777 == 0o600
    users = [line.split(":")[0] for line in (out / "passwd").read_text().splitlines()]
    assert users == [f"openmeg-S-{c.name}" for c in COMPONENTS]
    for path in out.rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            assert not any(p in data for p in passwords.values() if p), path
    again = _init(tmp_path)
    assert again.returncode == 0
    keystore = open_keystore(tmp_path / "ks", site_id="S")
    assert {c.name: keystore.get(f"mqtt/{c.name}") for c in COMPONENTS} == passwords
    rotated = _init(tmp_path, "--rotate")
    assert rotated.returncode == 0
    keystore = open_keystore(tmp_path / "ks", site_id="S")
    assert keystore.get("mqtt/feeder") != passwords["feeder"]
