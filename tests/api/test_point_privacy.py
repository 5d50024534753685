"""Who sees which device's points, route by route and role by role, as exact sets: the
service provider no customer's meter (the role matrix's privacy rule), a prosumer their own."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator

import pytest

from tests.api.harness import Harness

DAY = "start=2026-06-01T00:00Z&end=2026-06-02T00:00Z"
H01 = {"load-h01", "pv-h01", "bess-h01", "m-h01"}


@pytest.fixture(scope="module")
def h(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Harness]:
    with Harness(tmp_path_factory.mktemp("privacy")) as harness:
        time.sleep(1.0)  # a few cycles: every device has its values
        yield harness


def _expected(h: Harness) -> dict[str, set[str]]:
    every = set(h.api.services.scada.state.values)
    meters = {m.id for m in h.meg.site.meters}
    assert meters <= every and every >= {"m-h01", "pv-h01", "bess-h01"}  # loads: metered
    return {
        "operator": every,
        "auditor": every,
        "service_provider": every - meters,
        "prosumer": (H01 | {"pcc"}) & every,
    }


@pytest.mark.parametrize("role", ["operator", "auditor", "service_provider", "prosumer"])
def test_live_shows_each_role_its_devices(h: Harness, role: str) -> None:
    with h.client(role) as c:
        assert set(c.get("/api/v1/live").json()["devices"]) == _expected(h)[role]


@pytest.mark.parametrize(
    ("role", "allowed"),
    [
        ("operator", {"m-h01", "m-h05", "pv-h01", "wind1"}),
        ("auditor", {"m-h01", "m-h05", "pv-h01", "wind1"}),
        ("service_provider", {"pv-h01", "wind1"}),
        ("prosumer", {"m-h01", "pv-h01"}),
    ],
)
def test_history_per_role(h: Harness, role: str, allowed: set[str]) -> None:
    with h.client(role) as c:
        codes = {
            d: c.get(f"/api/v1/points/{d}/p_kw/history?{DAY}").status_code
            for d in ("m-h01", "m-h05", "pv-h01", "wind1")
        }
    assert {d for d, code in codes.items() if code == 200} == allowed
    assert {code for d, code in codes.items() if d not in allowed} <= {403}


@pytest.mark.parametrize("role", ["operator", "service_provider", "prosumer"])
def test_the_stream_sends_each_role_its_devices(h: Harness, role: str) -> None:
    from websockets.sync.client import connect

    url = h.url.replace("http", "ws") + "/api/v1/stream?token=" + h.tokens[role]
    seen: set[str] = set()
    with connect(url) as ws:
        deadline = time.monotonic() + 2.5
        while time.monotonic() < deadline:
            try:
                seen |= {p[0] for p in json.loads(ws.recv(timeout=0.5)).get("points", [])}
            except TimeoutError:
                continue
    expected = _expected(h)[role]
    assert seen and seen <= expected
    meters = {m.id for m in h.meg.site.meters}
    if role == "operator":
        assert seen & meters
    if role == "service_provider":
        assert not seen & meters
    if role == "prosumer":
        assert "m-h01" in seen or "pv-h01" in seen
