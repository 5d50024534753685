"""A private Mosquitto for the metering tests that a test may stop and start again, from the
configuration ``openmeg mqtt init`` writes (no anonymous clients, a password per component,
per-component ACLs, persistence, queues sized for metering: a persistent session keeps what
comes while its client is away, and across a restart of the broker)."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from openmeg.cli.mqtt import write_broker_dir
from openmeg.core.bus_acl import user_name
from openmeg.core.keystore import Keystore
from openmeg.core.keystore_kek import KeyEncryptionKey
from openmeg.protocols.broker_access import Login
from openmeg.protocols.broker_config import BrokerOptions
from tests.services import KEYSTORE_PASSPHRASE, ServiceUnavailable, answers, free_port

SITE = "demo"


class Mosquitto:
    """One broker on 127.0.0.1 (plain listener ``port``) with its files in ``root``."""

    def __init__(self, root: Path) -> None:
        exe = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
        if not Path(exe).exists():
            raise ServiceUnavailable("install mosquitto (Debian: apt-get install mosquitto)")
        self.exe, self.root, self.port = exe, root, free_port()
        self.host = "127.0.0.1"
        self.keystore_path = root / "openmeg.keystore"
        keystore = Keystore.open(
            self.keystore_path, KeyEncryptionKey.passphrase(KEYSTORE_PASSPHRASE)
        )
        options = BrokerOptions(
            tls_port=free_port(), tls_bind="127.0.0.1", plain_port=self.port, autosave_interval_s=1
        )
        self.conf = write_broker_dir(root / "broker", SITE, keystore, options)
        self.passwords = {
            name.removeprefix("mqtt/"): (keystore.get(name) or b"").decode()
            for name in keystore.names()
            if name.startswith("mqtt/")
        }
        if os.geteuid() == 0:  # mosquitto started as root runs as the user 'mosquitto'
            root.chmod(0o711)
            for path in [self.conf.parent, *self.conf.parent.rglob("*")]:
                shutil.chown(path, "mosquitto", "mosquitto")
        self.proc: subprocess.Popen[bytes] | None = None

    def login(self, component: str) -> Login:
        """The credentials of ``component`` of the site (``mdms``, ``head-end``, ...)."""
        return Login(username=user_name(SITE, component), password=self.passwords[component])

    def env(self) -> dict[str, str]:
        """Environment for an ``openmeg`` subprocess: the keystore holding the passwords."""
        return {
            "OPENMEG_KEYSTORE": str(self.keystore_path),
            "OPENMEG_KEYSTORE_PASSPHRASE": KEYSTORE_PASSPHRASE,
        }

    def start(self) -> None:
        with open(self.root / "log", "ab") as log:
            self.proc = subprocess.Popen(
                [self.exe, "-c", str(self.conf)], stdout=subprocess.DEVNULL, stderr=log
            )
        deadline = time.monotonic() + 10
        while not answers(self.host, self.port):
            if time.monotonic() > deadline or self.proc.poll() is not None:
                raise ServiceUnavailable(
                    f"mosquitto did not start: {(self.root / 'log').read_text()[-500:]}"
                )
            time.sleep(0.05)

    def stop(self) -> None:
        """Stop the broker (SIGTERM: it saves its persistent state)."""
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(10)
            self.proc = None


@contextmanager
def mosquitto() -> Iterator[Mosquitto]:
    root = Path(tempfile.mkdtemp(prefix="openmeg-mosq-"))
    broker = Mosquitto(root)
    broker.start()
    try:
        yield broker
    finally:
        broker.stop()
        shutil.rmtree(root, ignore_errors=True)
