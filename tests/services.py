"""Real PostgreSQL and MQTT for the tests.

``OPENMEG_TEST_PG`` (a SQLAlchemy URL) defaults to the server on 127.0.0.1:5432; where none
answers, a private one is started from the installed binaries. MQTT is always a private
Mosquitto started from the configuration ``openmeg mqtt init`` writes (authenticated, ACLs,
TLS), never an anonymous broker. Where the binaries are missing, the tests fail and say what to
install. They never pass by skipping.
"""

from __future__ import annotations

import glob
import os
import random
import secrets
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import sqlalchemy as sa

from openmeg.cli.mqtt import write_broker_dir
from openmeg.core.bus_acl import COMPONENTS
from openmeg.core.keystore import Keystore
from openmeg.core.keystore_kek import KeyEncryptionKey
from openmeg.protocols.broker_access import BrokerAccess, Login
from openmeg.protocols.broker_config import BrokerOptions
from openmeg.protocols.mqtt import MqttBus

DEFAULT_PG = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"


class ServiceUnavailable(RuntimeError):
    """A service the tests need can neither be reached nor started."""


FREE_PORTS = range(20000, 32000)
"""Where the tests' servers listen: below the ephemeral range (32768 up on Linux), so that no
outgoing connection takes a port between the moment it is chosen and the moment it is bound."""


def free_port() -> int:
    """A port on 127.0.0.1 nobody listens on, from ``FREE_PORTS``."""
    pick = random.SystemRandom()
    for _ in range(500):
        port = pick.choice(FREE_PORTS)
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise ServiceUnavailable(f"no free port in {FREE_PORTS.start}..{FREE_PORTS.stop - 1}")


def answers(host: str, port: int, timeout: float = 1.0) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def _pg_bin(name: str) -> str | None:
    found = shutil.which(name)
    if found:
        return found
    candidates = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    return candidates[-1] if candidates else None


def _pg_reachable(url: str) -> bool:
    engine = sa.create_engine(url, connect_args={"connect_timeout": 3})
    try:
        with engine.connect() as conn:
            conn.execute(sa.text("select 1"))
        return True
    except sa.exc.OperationalError:
        return False
    finally:
        engine.dispose()


@contextmanager
def postgres_server() -> Iterator[str]:
    """The URL of a PostgreSQL admin database the tests may create databases in."""
    url = os.environ.get("OPENMEG_TEST_PG", DEFAULT_PG)
    if _pg_reachable(url):
        yield url
        return
    initdb, pg_ctl = _pg_bin("initdb"), _pg_bin("pg_ctl")
    if not initdb or not pg_ctl:
        raise ServiceUnavailable(
            f"no PostgreSQL answers at {url} and initdb/pg_ctl are not installed: "
            "install PostgreSQL (Debian: apt-get install postgresql) or set OPENMEG_TEST_PG"
        )
    root = Path(tempfile.mkdtemp(prefix="openmeg-pg-"))
    data, port = root / "data", free_port()
    run_as: list[str] = []
    if os.geteuid() == 0:  # PostgreSQL refuses to run as root: run it as the postgres user
        if not _has_user("postgres"):
            raise ServiceUnavailable("running as root needs a 'postgres' user to start PostgreSQL")
        shutil.chown(root, "postgres", "postgres")
        run_as = ["runuser", "-u", "postgres", "--"]
    subprocess.run(
        [*run_as, initdb, "-D", str(data), "-A", "trust", "-U", "postgres"],
        check=True,
        capture_output=True,
    )
    subprocess.run(
        [
            *run_as,
            pg_ctl,
            "-D",
            str(data),
            "-w",
            "-l",
            str(root / "log"),
            "-o",
            f"-p {port} -k {root} -c listen_addresses=127.0.0.1",
            "start",
        ],
        check=True,
        capture_output=True,
    )
    try:
        yield f"postgresql+psycopg://postgres@127.0.0.1:{port}/postgres"
    finally:
        subprocess.run(
            [*run_as, pg_ctl, "-D", str(data), "-m", "fast", "stop"], capture_output=True
        )
        shutil.rmtree(root, ignore_errors=True)


def _has_user(name: str) -> bool:
    import pwd

    try:
        pwd.getpwnam(name)
        return True
    except KeyError:
        return False


TEST_USER = "openmeg-test"  # a test-only client: reads and writes meg/#, for the generic bus tests
TEST_SITE = "demo"


@dataclass(frozen=True, kw_only=True)
class Broker:
    """A private Mosquitto started from the configuration ``openmeg mqtt init`` writes.

    ``port``: an authenticated plain listener on 127.0.0.1; ``tls_port``: the TLS listener
    (certificate for 127.0.0.1 and localhost from the site CA ``ca_file``); ``other_tls_port``:
    the same TLS listener on 127.0.0.2, a host name its certificate does not name. Each
    component of site ``site`` logs in as ``openmeg-<site>-<component>`` with ``passwords``
    (also in the keystore ``keystore`` as ``mqtt/<component>``)."""

    host: str
    port: int
    tls_port: int
    other_tls_port: int
    ca_file: Path
    site: str
    keystore: Path
    passwords: dict[str, str]
    test_password: str
    root: Path

    def login(self, component: str, *, tls: bool = False) -> Login:
        """The credentials of ``component`` (``TEST_USER`` for the test client)."""
        ca = self.ca_file if tls else None
        if component == TEST_USER:
            return Login(username=TEST_USER, password=self.test_password, ca_file=ca)
        return self.access(tls=tls).login(component)

    def access(self, *, tls: bool = False) -> BrokerAccess:
        """What ``live_meg`` takes to connect every component."""
        return BrokerAccess(
            host=self.host,
            port=self.tls_port if tls else self.port,
            site=self.site,
            passwords=self.passwords,
            ca_file=self.ca_file if tls else None,
        )

    def bus(self, component: str, *, tls: bool = False, client_id: str = "") -> MqttBus:
        """An MQTT bus (not yet connected) logged in as ``component``."""
        port = self.tls_port if tls else self.port
        return MqttBus(self.host, port, client_id=client_id, login=self.login(component, tls=tls))

    def address(self, *, tls: bool = False) -> str:
        """``host:port`` for ``--mqtt``."""
        return f"{self.host}:{self.tls_port if tls else self.port}"

    def env(self) -> dict[str, str]:
        """Environment for an ``openmeg`` subprocess: the keystore with the passwords (and
        ``OPENMEG_MQTT_CA`` for the TLS port)."""
        return {
            "OPENMEG_KEYSTORE": str(self.keystore),
            "OPENMEG_KEYSTORE_PASSPHRASE": KEYSTORE_PASSPHRASE,
        }


KEYSTORE_PASSPHRASE = "openmeg-test-keystore-passphrase"


def _mosquitto() -> str:
    found = shutil.which("mosquitto") or (
        "/usr/sbin/mosquitto" if os.path.exists("/usr/sbin/mosquitto") else None
    )
    if not found:
        raise ServiceUnavailable(
            "mosquitto is not installed: install it (Debian: apt-get install mosquitto)"
        )
    return found


@contextmanager
def mqtt_broker(site: str = TEST_SITE) -> Iterator[Broker]:
    """A private Mosquitto on free ports, configured as ``openmeg mqtt init`` writes it (no
    anonymous clients, per-component ACLs, TLS), plus a test-only client ``TEST_USER``."""
    mosquitto = _mosquitto()
    root = Path(tempfile.mkdtemp(prefix="openmeg-mqtt-"))
    port, tls_port, other_tls_port = free_port(), free_port(), free_port()
    keystore_path = root / "openmeg.keystore"
    keystore = Keystore.open(keystore_path, KeyEncryptionKey.passphrase(KEYSTORE_PASSPHRASE))
    test_password = secrets.token_urlsafe(16)
    conf = write_broker_dir(
        root / "broker",
        site,
        keystore,
        BrokerOptions(tls_port=tls_port, tls_bind="127.0.0.1", plain_port=port),
        extra_users={TEST_USER: (test_password, ["meg/#"])},
    )
    tls = conf.parent / "tls"
    with conf.open("a") as f:
        f.write(
            f"\nlistener {other_tls_port} 127.0.0.2\n"
            f"certfile {tls / 'server.pem'}\nkeyfile {tls / 'server.key'}\n"
        )
    if os.geteuid() == 0 and _has_user("mosquitto"):  # as root, mosquitto runs as its own user
        root.chmod(0o711)
        for path in [conf.parent, *conf.parent.rglob("*")]:
            shutil.chown(path, "mosquitto", "mosquitto")
    passwords = {c.name: keystore.get(f"mqtt/{c.name}") or b"" for c in COMPONENTS}
    log = root / "mosquitto.log"
    with log.open("wb") as out:
        proc = subprocess.Popen([mosquitto, "-c", str(conf)], stdout=out, stderr=out)
    try:
        deadline = time.monotonic() + 10
        while not (answers("127.0.0.1", port) and answers("127.0.0.1", tls_port)):
            if time.monotonic() > deadline or proc.poll() is not None:
                raise ServiceUnavailable(
                    f"mosquitto did not start on ports {port}, {tls_port}: {log.read_text()}"
                )
            time.sleep(0.05)
        yield Broker(
            host="127.0.0.1",
            port=port,
            tls_port=tls_port,
            other_tls_port=other_tls_port,
            ca_file=tls / "ca.pem",
            site=site,
            keystore=keystore_path,
            passwords={k: v.decode() for k, v in passwords.items()},
            test_password=test_password,
            root=root,
        )
    finally:
        proc.terminate()
        proc.wait(10)
        shutil.rmtree(root, ignore_errors=True)


@contextmanager
def http_server(app: object, port: int | None = None) -> Iterator[str]:
    """Serve an ASGI app with uvicorn in a thread on 127.0.0.1; yields its base URL."""
    import threading

    import uvicorn

    port = port or free_port()
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning")  # type: ignore[arg-type]
    srv = uvicorn.Server(config)
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    for _ in range(200):
        if srv.started:
            break
        time.sleep(0.05)
    else:
        raise RuntimeError(f"the HTTP server did not start on port {port}")
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        srv.should_exit = True
        thread.join(10)
