"""The price server over real HTTP on 127.0.0.1 (uvicorn in a thread)."""

import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime

import pandas as pd
import pytest

from openmeg.core.clock import SimClock
from openmeg.market.price_server import price_app
from tests.services import Broker, free_port, http_server

NOW = datetime(2026, 10, 1, 12, 7, tzinfo=UTC)


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    idx = pd.date_range("2026-10-01T00:00Z", periods=96, freq="15min")
    buy = [0.10] * 48 + [0.30] * 4 + [0.10] * 44  # a price change at 12:00 and at 13:00
    prices = pd.DataFrame({"interval_start": idx, "buy": buy, "sell": [b - 0.03 for b in buy]})
    with http_server(price_app(prices, SimClock(NOW))) as url:
        yield url


def _get(url: str) -> tuple[int, object]:
    try:
        with urllib.request.urlopen(url, timeout=5) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read())


def test_prices_current_schedule_and_time(server: str) -> None:
    status, rows = _get(f"{server}/prices?start=2026-10-01T11:45Z&end=2026-10-01T12:15Z")
    assert status == 200 and [r["buy"] for r in rows] == [0.10, 0.30]  # type: ignore[union-attr]
    status, current = _get(f"{server}/prices/current")
    assert current == {
        "interval_start": "2026-10-01T12:00:00+00:00",
        "buy": 0.30,
        "sell": pytest.approx(0.27),
    }
    status, changes = _get(f"{server}/schedule?hours=3")
    assert [c["interval_start"][11:16] for c in changes] == ["12:00", "13:00"]  # type: ignore[union-attr]
    status, now = _get(f"{server}/time")
    assert now["utc"] == NOW.isoformat()  # type: ignore[index]


def test_bad_requests_get_422_with_a_reason(server: str) -> None:
    status, body = _get(f"{server}/prices?start=2026-10-01T12:00&end=2026-10-01T13:00")
    assert status == 422 and "time zone" in body["detail"]  # type: ignore[index]
    status, body = _get(f"{server}/prices?start=2026-10-01T13:00Z&end=2026-10-01T12:00Z")
    assert status == 422 and body["detail"] == "end must come after start"  # type: ignore[index]
    status, _ = _get(f"{server}/prices?start=yesterday&end=2026-10-01T12:00Z")
    assert status == 422


def _serve(*args: str, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    """``openmeg prices serve`` with two days of synthetic prices."""
    return subprocess.Popen(
        [sys.executable, "-m", "openmeg", "prices", "serve", "--days", "2", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, **(env or {})},
    )


def test_prices_serve_command(tmp_path: object) -> None:
    port = free_port()
    proc = _serve("--start", "2026-10-01", "--port", str(port))
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline().startswith("serving 192 intervals")
        for _ in range(100):
            try:
                status, rows = _get(
                    f"http://127.0.0.1:{port}/prices?start=2026-10-01T00:00Z&end=2026-10-01T01:00Z"
                )
                break
            except urllib.error.URLError:
                time.sleep(0.1)
        assert status == 200 and len(rows) == 4  # type: ignore[arg-type]
    finally:
        proc.terminate()
        proc.communicate(timeout=20)
    bad = subprocess.run(
        [sys.executable, "-m", "openmeg", "prices", "serve", "--csv", "/nonexistent.csv"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert bad.returncode == 2 and "cannot be read" in bad.stderr


async def test_prices_serve_pushes_the_schedule_on_mqtt(broker: Broker) -> None:
    import asyncio
    from datetime import timedelta

    from openmeg.core.messages import MarketPrices

    bus = await broker.bus("customer").connect()
    sub = await bus.subscribe("meg/demo/market/prices")
    today = datetime.now(UTC).date().isoformat()
    proc = _serve(
        *("--start", today, "--port", str(free_port()), "--mqtt", broker.address()),
        env=broker.env(),
    )
    try:
        _, msg = await sub.get(timeout=30)
    finally:
        proc.terminate()
        await asyncio.to_thread(proc.communicate, timeout=20)
        await bus.unsubscribe(sub)
        await bus.close()
    assert isinstance(msg, MarketPrices) and msg.site == "demo"
    now = datetime.now(UTC)
    first = msg.changes[0].effective_from
    assert first <= now < first + timedelta(minutes=15)  # the price now, then the changes ahead
    assert msg.changes[-1].effective_from <= now + timedelta(hours=24)
    assert len(msg.changes) > 10
