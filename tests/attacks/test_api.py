"""Attacks on the API and the dashboard of a live MEG on 127.0.0.1: X-Forwarded-For rotation, an
owner locked out at will, a flood of names for the login limiter, the service provider reading
customers' meters, stored XSS through an alarm, inputs that gave 500s, an oversized body and an
expired token on the WebSocket. Each is refused with a clear message and the API serves on."""

from __future__ import annotations

import json
import socket
import time
import tracemalloc
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from openmeg.api.client_address import proxy_networks
from openmeg.api.login_limit import LoginLimiter
from openmeg.core.messages import AlarmMessage, alarm_topic
from tests.api.harness import PASSWORD, START, Harness

TOKEN = "/api/v1/auth/token"
EDITS = "/api/v1/meters/m-h01/edits"
MB = 1 << 20
SLOW_S = 3.0  # a slowed name's pace here (argon2 takes up to a second on a busy machine)


@pytest.fixture(scope="module")
def h(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Harness]:
    with Harness(tmp_path_factory.mktemp("attacks-api")) as harness:
        yield harness


@pytest.fixture
def fresh(h: Harness) -> Iterator[Harness]:
    """The harness with a limiter of its own and no trusted proxy, restored afterwards."""
    svc = h.api.services
    before = svc.limiter, svc.trusted_proxies
    svc.limiter = LoginLimiter(slow_s=SLOW_S)
    yield h
    svc.limiter, svc.trusted_proxies = before


def _still_serving(h: Harness) -> None:
    with httpx.Client(base_url=h.url, timeout=20) as c:
        assert c.get("/health").json()["status"] == "ok"
    with h.client("operator") as op:
        assert op.get("/api/v1/live").status_code == 200


def _login(c: httpx.Client, name: str, password: str, via: str | None = None) -> httpx.Response:
    headers = {"X-Forwarded-For": via} if via else {}
    form = {"grant_type": "password", "username": name, "password": password}
    return c.post(TOKEN, data=form, headers=headers)


def _failed_from(h: Harness, name: str) -> list[str]:
    records = h.api.services.audit.records(limit=100_000)
    return [r.detail["from"] for r in records if r.action == "login_failed" and r.actor == name]


def test_x_forwarded_for_rotation_from_an_untrusted_peer_is_ignored(fresh: Harness) -> None:
    h = fresh
    with httpx.Client(base_url=h.url, timeout=20) as c:
        codes = [
            _login(c, "audit", "wrong password!", f"10.9.{i}.{i}").status_code for i in range(8)
        ]
        assert codes == [401] * 5 + [429] * 3
        r = _login(c, "audit", PASSWORD, "10.99.99.99")  # the right password, a new "address"
        assert r.status_code == 429
        assert "too many failed logins from 127.0.0.1" in r.json()["detail"]
        assert 0 < int(r.headers["retry-after"]) <= 301
    assert _failed_from(h, "audit")[-5:] == ["127.0.0.1"] * 5  # the real peer, not the header
    # behind a trusted proxy the header is believed: its right-most untrusted address
    h.api.services.trusted_proxies = proxy_networks(["127.0.0.0/8"])
    with httpx.Client(base_url=h.url, timeout=20) as c:
        assert _login(c, "audit", "wrong password!", "6.6.6.6, 10.1.2.3").status_code == 401
        assert _login(c, "audit", "wrong password!", "10.1.2.3, 127.0.0.5").status_code == 401
        assert _login(c, "audit", PASSWORD, "10.4.4.4").status_code == 200
    assert _failed_from(h, "audit")[-2:] == ["10.1.2.3", "10.1.2.3"]
    _still_serving(h)


@pytest.mark.slow
def test_nobody_locks_an_owner_out_at_will(fresh: Harness) -> None:
    """Policy: a (name, address) pair is locked after 5 failures; beyond 20 failures for a name
    from any addresses, each failing address is out and the rest share one try per slow_s."""
    h = fresh
    h.api.services.trusted_proxies = proxy_networks(["127.0.0.1/32"])  # to speak as many peers
    with httpx.Client(base_url=h.url, timeout=20) as c:
        codes = [_login(c, "op", "wrong password!", "203.0.113.9").status_code for _ in range(7)]
        assert codes == [401] * 5 + [429] * 2
        assert _login(c, "op", PASSWORD, "198.51.100.1").status_code == 200  # the owner
        # a distributed guesser passes the ceiling of 20 failures for the name
        for i in range(16):
            assert _login(c, "op", "wrong password!", f"203.0.113.{100 + i}").status_code == 401
            time.sleep(0.02)
        # its addresses are out for the window; new ones are slowed: one try per SLOW_S
        r = _login(c, "op", "wrong password!", "203.0.113.100")
        assert r.status_code == 429 and int(r.headers["retry-after"]) > 250
        time.sleep(SLOW_S)
        tries = [_login(c, "op", "wrong password!", f"203.0.113.{200 + i}") for i in range(4)]
        assert [t.status_code for t in tries].count(401) == 1  # one guess, the rest wait
        assert all(
            0 < int(t.headers["retry-after"]) <= SLOW_S + 1 for t in tries if t.status_code == 429
        )
        time.sleep(SLOW_S)
        assert _login(c, "op", PASSWORD, "198.51.100.1").status_code == 200  # still the owner's
    _still_serving(h)


def test_the_login_limiters_memory_is_bounded() -> None:
    limiter = LoginLimiter(max_keys=10_000)
    tracemalloc.start()
    for i in range(100_000):
        limiter.failed(f"name-{i}", f"10.{i >> 16 & 255}.{i >> 8 & 255}.{i & 255}", now=float(i))
    size, _ = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert limiter.tracked() == 30_000  # pairs, addresses, names: 10,000 each
    assert size < 12 * MB
    # the newest are kept: the last address still counts its failure
    assert limiter.retry_after("name-99999", "10.1.134.159", now=100_000.0) == 0.0
    for _ in range(4):
        limiter.failed("name-99999", "10.1.134.159", now=100_000.0)
    assert limiter.retry_after("name-99999", "10.1.134.159", now=100_000.0) > 0


def test_the_service_provider_reads_no_customer_meter(h: Harness) -> None:
    meters = {m.id for m in h.meg.site.meters}
    day = "start=2026-06-01T00:00Z&end=2026-06-02T00:00Z"
    with h.client("service_provider") as sp:
        r = sp.get(f"/api/v1/points/m-h01/import_kw/history?{day}")
        assert r.status_code == 403 and "m-h01 is a customer's meter" in r.json()["detail"]
        live = sp.get("/api/v1/live").json()["devices"]
        assert live and not set(live) & meters
        assert sp.get("/api/v1/meters").status_code == 403
        assert sp.get("/api/v1/meters/m-h01/readings?" + day).status_code == 403
    with h.client("operator") as op:
        assert set(op.get("/api/v1/live").json()["devices"]) & meters  # the operator does
    from websockets.sync.client import connect

    url = h.url.replace("http", "ws") + "/api/v1/stream?token=" + h.tokens["service_provider"]
    seen: set[str] = set()
    with connect(url) as ws:
        deadline = time.monotonic() + 2.0
        while time.monotonic() < deadline:
            try:
                frame = json.loads(ws.recv(timeout=0.5))
            except TimeoutError:
                continue
            seen |= {p[0] for p in frame.get("points", [])}
    assert seen and not seen & meters
    _still_serving(h)


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    from tests.web.pages import chromium

    yield from chromium()


def test_an_alarm_text_with_html_is_shown_as_text(h: Harness, browser: object) -> None:
    from playwright.sync_api import Browser, expect

    assert isinstance(browser, Browser)
    payload = '<img src=x onerror="window.__pwned=1">'
    page = browser.new_page()
    page.goto(h.url)
    page.fill("#username", "op")
    page.fill("#password", PASSWORD)
    page.click("button[type=submit]")
    expect(page.locator("#app")).to_be_visible(timeout=10_000)
    alarm = AlarmMessage(
        site="demo",
        source="sensor-bess",
        code="xss",
        text=payload + "<script>window.__pwned=2</script>",
        active=True,
        ts=START,
        severity="warning",
    )
    h.call(h.bus.publish(alarm_topic("demo", "sensor-bess"), alarm))
    row = page.locator('tr[data-alarm="sensor-bess/xss"]')
    expect(row).to_be_visible(timeout=5_000)
    expect(row.locator("td").first).to_have_text(
        f"sensor-bess/xss: {payload}<script>window.__pwned=2</script>"
    )
    page.wait_for_timeout(500)
    assert row.locator("img, script").count() == 0
    assert page.evaluate("window.__pwned") is None
    page.close()
    _still_serving(h)


EDIT = {"channel": "import", "interval_start": "2026-06-01T05:00:00Z", "value_kwh": 0.2}


@pytest.mark.parametrize(
    ("change", "why"),
    [
        ({"interval_start": "0001-01-01T00:00:00Z"}, "an interval that has ended, between 2000"),
        ({"interval_start": "0001-01-01T00:00:00+01:00"}, "out of range"),
        ({"interval_start": "9999-12-31T23:45:00Z"}, "an interval that has ended, between 2000"),
        ({"interval_start": "9999-12-31T23:45:00-01:00"}, "out of range"),
        ({"interval_start": "2026-06-01T00:07:00Z"}, "not on the 15-minute grid"),
        ({"value_kwh": 1e300}, "beyond any meter"),
        ({"value_kwh": -0.1}, "greater than or equal to 0"),
    ],
)
def test_a_bad_meter_edit_is_refused_and_nothing_stored(
    h: Harness, change: dict[str, object], why: str
) -> None:
    before = len(h.api.services.audit.records(limit=100_000))
    with h.client("operator") as op:
        r = op.post(EDITS, json={**EDIT, **change, "reason": "attack"})
    assert r.status_code == 422, r.text
    assert why in r.text
    assert len(h.api.services.audit.records(limit=100_000)) == before
    _still_serving(h)


@pytest.mark.parametrize("token", ["NaN", "Infinity", "-Infinity", "1e309", "1" + "0" * 5000])
def test_non_finite_and_huge_numbers_in_a_body_are_refused(h: Harness, token: str) -> None:
    before = len(h.api.services.audit.records(limit=100_000))
    body = json.dumps({**EDIT, "value_kwh": "X", "reason": "attack"}).replace('"X"', token)
    command = json.dumps({"device": "bess-community", "name": "p_set_kw", "value": "X"})
    with h.client("operator") as op:
        for path, text in ((EDITS, body), ("/api/v1/commands", command.replace('"X"', token))):
            r = op.post(path, content=text, headers={"content-type": "application/json"})
            assert r.status_code in (400, 422), (path, token, r.text)
            assert "parsing the body" in r.text or "finite" in r.text, r.text
    added = h.api.services.audit.records(limit=100_000)[before:]
    if r.status_code == 422:  # a command read and refused: audited, the token's actor
        assert [(a.actor, a.action, a.target) for a in added] == [
            ("op", "command_refused", "bess-community/p_set_kw")
        ]
        assert "finite" in added[0].detail["reason"], added[0].detail
    else:  # no body could be read: nothing to audit
        assert added == []
    _still_serving(h)


def _rss_kib() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS in /proc/self/status")


def _response(sock: socket.socket) -> bytes:
    """The status line, headers and body of one response (its Content-Length long)."""
    sock.settimeout(10)
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            return data
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = int(head.lower().split(b"content-length: ")[1].split(b"\r\n")[0])
    while len(body) < length:
        chunk = sock.recv(65536)
        if not chunk:
            break
        body += chunk
    return head + b"\r\n\r\n" + body


def test_an_oversized_body_is_refused_unread(h: Harness) -> None:
    rss0 = _rss_kib()
    # announced: 413 before a byte of the body is sent
    with socket.create_connection(("127.0.0.1", h.port)) as s:
        s.sendall(
            b"POST /api/v1/commands HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Content-Length: 104857600\r\n\r\n"
        )
        head = _response(s)
    assert head.startswith(b"HTTP/1.1 413"), head
    assert b"larger than 1048576 bytes" in head
    # streamed (chunked), 100 MB: refused once past 1 MiB, without the server keeping it
    chunk = b"x" * 65536
    frame = b"%x\r\n%s\r\n" % (len(chunk), chunk)
    sent = 0
    with socket.create_connection(("127.0.0.1", h.port)) as s:
        s.sendall(
            b"POST /api/v1/meters/m-h01/edits HTTP/1.1\r\nHost: x\r\n"
            b"Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
        )
        s.settimeout(5)
        try:
            while sent < 100 * MB:
                s.sendall(frame)
                sent += len(chunk)
        except (BrokenPipeError, ConnectionResetError, TimeoutError):
            pass
        head = _response(s)
    assert head.startswith(b"HTTP/1.1 413"), head
    assert head.endswith(b'the request body is larger than 1048576 bytes: send less"}')
    assert sent < 20 * MB  # the server stopped taking it soon after the limit
    grown = (_rss_kib() - rss0) / 1024
    assert grown < 8, f"the process grew by {grown:.1f} MB"
    _still_serving(h)


def test_the_stream_closes_when_its_token_expires(h: Harness) -> None:
    from websockets.exceptions import ConnectionClosed
    from websockets.sync.client import connect

    tokens = h.api.services.tokens
    ttl = tokens.ttl_s
    tokens.ttl_s = 2.0
    try:
        short = h.login("audit", PASSWORD)
    finally:
        tokens.ttl_s = ttl
    url = h.url.replace("http", "ws") + "/api/v1/stream?token="
    t0 = time.monotonic()
    frames = 0
    with connect(url + short) as ws, pytest.raises(ConnectionClosed) as closed:
        while time.monotonic() - t0 < 10:
            ws.recv(timeout=5)
            frames += 1
    assert frames > 0 and time.monotonic() - t0 < 3.5
    assert closed.value.rcvd is not None
    assert closed.value.rcvd.code == 4401
    assert closed.value.rcvd.reason == "the token has expired: log in again"
    with connect(url + short) as ws, pytest.raises(ConnectionClosed) as again:
        ws.recv(timeout=5)
    assert again.value.rcvd is not None and again.value.rcvd.code == 4401
    assert "expired" in again.value.rcvd.reason
    with connect(url + h.tokens["operator"]) as ws:
        assert json.loads(ws.recv(timeout=5))["sent_at"] > 0
    _still_serving(h)
