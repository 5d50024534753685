"""A private Mosquitto for the metering tests, that a test may stop and start again: users with
passwords (no anonymous client), persistence on disk, queues sized for metering (a persistent
session keeps what comes while its client is away), unlimited messages in flight so that a
subscriber may acknowledge a whole batch at once."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.services import ServiceUnavailable, answers, free_port

USERS = {"mdms": "mdms-test-secret", "head-end": "head-end-test-secret"}


class Mosquitto:
    """One broker on 127.0.0.1 with its files in ``root``."""

    def __init__(self, root: Path) -> None:
        exe = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
        passwd = shutil.which("mosquitto_passwd")
        if not Path(exe).exists() or passwd is None:
            raise ServiceUnavailable("install mosquitto (Debian: apt-get install mosquitto)")
        self.exe, self.root, self.port = exe, root, free_port()
        self.host = "127.0.0.1"
        users = root / "passwd"
        users.touch(mode=0o600)
        for name, password in USERS.items():
            subprocess.run([passwd, "-b", str(users), name, password], check=True)
        (root / "data").mkdir()
        self.conf = root / "mosquitto.conf"
        self.conf.write_text(
            f"listener {self.port} 127.0.0.1\n"
            "allow_anonymous false\n"
            f"password_file {users}\n"
            "persistence true\n"
            f"persistence_location {root / 'data'}/\n"
            "autosave_interval 1\n"
            "max_queued_messages 1000000\n"
            "max_queued_bytes 0\n"
            "max_inflight_messages 0\n"
            "persistent_client_expiration 1d\n"
        )
        if os.geteuid() == 0:  # mosquitto started as root runs as the user 'mosquitto'
            for path in (root, users, root / "data", self.conf):
                shutil.chown(path, "mosquitto", "mosquitto")
        self.proc: subprocess.Popen[bytes] | None = None

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
