"""Real PostgreSQL and MQTT for the tests: the ones named in the environment, or our own.

``OPENMEG_TEST_PG`` (a SQLAlchemy URL) and ``OPENMEG_TEST_MQTT`` (``host:port``) default to the
servers on 127.0.0.1:5432 and 127.0.0.1:1883. Where none answers, a private server is started
from the installed binaries on a free port; where the binaries are missing, the tests fail and
say what to install. They never pass by skipping.
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import sqlalchemy as sa

DEFAULT_PG = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
DEFAULT_MQTT = "127.0.0.1:1883"


class ServiceUnavailable(RuntimeError):
    """A service the tests need can neither be reached nor started."""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


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


@contextmanager
def mqtt_broker() -> Iterator[tuple[str, int]]:
    """``(host, port)`` of an MQTT broker."""
    host, _, port_text = os.environ.get("OPENMEG_TEST_MQTT", DEFAULT_MQTT).rpartition(":")
    if answers(host, int(port_text)):
        yield host, int(port_text)
        return
    mosquitto = shutil.which("mosquitto") or (
        "/usr/sbin/mosquitto" if os.path.exists("/usr/sbin/mosquitto") else None
    )
    if not mosquitto:
        raise ServiceUnavailable(
            f"no MQTT broker answers at {host}:{port_text} and mosquitto is not installed: "
            "install it (Debian: apt-get install mosquitto) or set OPENMEG_TEST_MQTT"
        )
    port = free_port()
    root = Path(tempfile.mkdtemp(prefix="openmeg-mqtt-"))
    conf = root / "mosquitto.conf"
    conf.write_text(f"listener {port} 127.0.0.1\nallow_anonymous true\npersistence false\n")
    proc = subprocess.Popen(
        [mosquitto, "-c", str(conf)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        deadline = time.monotonic() + 10
        while not answers("127.0.0.1", port):
            if time.monotonic() > deadline or proc.poll() is not None:
                raise ServiceUnavailable(f"mosquitto did not start on port {port}")
            time.sleep(0.05)
        yield "127.0.0.1", port
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
