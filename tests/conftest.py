"""Shared fixtures: real PostgreSQL and MQTT, stores on both databases, buses on both transports."""

from __future__ import annotations

import asyncio
import threading
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from openmeg.core.bus import Bus, InProcessBus
from openmeg.core.store import Store, sqlite_url
from tests.services import TEST_USER, Broker, ServiceUnavailable, mqtt_broker, postgres_server


@pytest.fixture(scope="session")
def pg_admin_url() -> Iterator[str]:
    try:
        with postgres_server() as url:
            yield url
    except ServiceUnavailable as err:
        pytest.fail(str(err))


@pytest.fixture(scope="session")
def broker() -> Iterator[Broker]:
    """A private Mosquitto from the generated configuration (see ``tests.services.Broker``):
    ``broker.bus("feeder")``, ``broker.login("operator", tls=True)``, ``broker.access()``."""
    try:
        with mqtt_broker() as b:
            yield b
    except ServiceUnavailable as err:
        pytest.fail(str(err))


@pytest.fixture
def pg_url(pg_admin_url: str) -> Iterator[str]:
    """A fresh PostgreSQL database for one test, dropped afterwards."""
    name = f"openmeg_test_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(pg_admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    url = pg_admin_url.rsplit("/", 1)[0] + f"/{name}"
    try:
        yield url
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    """The same store tests on SQLite and on PostgreSQL."""
    if request.param == "sqlite":
        url = sqlite_url(tmp_path / "meg.db")
    else:
        url = request.getfixturevalue("pg_url")
    s = Store(url)
    s.create_schema()
    try:
        yield s
    finally:
        s.close()


@pytest.fixture(params=["inprocess", "mqtt"])
async def bus(request: pytest.FixtureRequest) -> AsyncIterator[Bus]:
    """The same bus tests in-process and over a real MQTT broker (as the test-only client
    ``TEST_USER``, which may publish on every topic: the components' scopes are the
    ``Buses`` of a ``LiveMeg``)."""
    b: Bus
    if request.param == "inprocess":
        b = InProcessBus()
    else:
        broker: Broker = request.getfixturevalue("broker")
        client_id = f"openmeg-test-{uuid.uuid4().hex[:8]}"
        b = await broker.bus(TEST_USER, client_id=client_id).connect()
    try:
        yield b
    finally:
        await b.close()


@pytest.fixture(autouse=True)
def no_leaked_threads() -> Iterator[None]:
    """Fail a test that leaves threads running."""
    before = set(threading.enumerate())
    yield
    leaked = [
        t
        for t in threading.enumerate()
        if t not in before
        and t.is_alive()
        and not t.daemon
        and not t.name.startswith("asyncio_")  # the loop's executor, shut down with the loop
        and t.name != "AnyIO worker thread"  # the loop's pool for sync routes, likewise
    ]
    assert not leaked, f"test leaked threads: {leaked}"


@pytest.fixture
async def no_leaked_tasks() -> AsyncIterator[None]:
    """Fail a test that leaves asyncio tasks running."""
    yield
    current = asyncio.current_task()
    leaked = [t for t in asyncio.all_tasks() if t is not current and not t.done()]
    assert not leaked, f"test leaked asyncio tasks: {leaked}"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Every coroutine test checks that it leaves no asyncio task behind."""
    for item in items:
        fn = getattr(item, "function", None)
        if fn is not None and asyncio.iscoroutinefunction(fn):
            item.fixturenames.insert(0, "no_leaked_tasks")  # type: ignore[attr-defined]
