"""``openmeg services``: init, list, subscribe (relaying, then unsubscribed), status and
unsubscribe, against an advertisement server and the example provider on 127.0.0.1."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from openmeg.cli import app
from openmeg.core.audit import audit_log_of
from openmeg.core.clock import WallClock
from openmeg.core.store import Store, sqlite_url
from openmeg.protocols.provider_ca import ProviderAuthority
from openmeg.provider.advert_http import MtlsServer
from openmeg.provider.advert_identity import TlsIdentity
from openmeg.provider.advertisement import AdvertisementBoard
from openmeg.provider.comfort_optimiser import ComfortOptimiser
from tests.customer.provisioning_world import offer
from tests.keys import env_keystore

runner = CliRunner()


@dataclass
class Providers:
    advertiser: str
    loop: asyncio.AbstractEventLoop
    provider: ComfortOptimiser

    def run(self, coro: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(30)


@pytest.fixture
def providers(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Providers]:
    """``services init`` made the CA and our certificates; the advertisement server and the
    provider (certified by that CA) run in a thread of their own."""
    monkeypatch.chdir(tmp_path)
    made = runner.invoke(app, ["services", "init", "--premises", "office"])
    assert made.exit_code == 0, made.output
    assert "premises-office: client " in made.output
    keys = env_keystore()
    ca = ProviderAuthority.load("providers", keys, Path("provisioning"))
    provider_id = TlsIdentity.issue(ca, "comfort-optimiser", keys)
    board_id = TlsIdentity.issue(ca, "advertiser", keys)
    store = Store(sqlite_url(tmp_path / "providers.db"))
    store.create_schema()
    board = AdvertisementBoard(
        audit_log_of(store, keys),
        WallClock().now,
        trusted=lambda fp: fp == provider_id.client_fingerprint,
    )
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, name="providers")
    thread.start()
    advertiser = MtlsServer(board.routes(), board_id.server_context, on_refused=board.tls_refused)
    provider = ComfortOptimiser(provider_id)
    p = Providers(advertiser="", loop=loop, provider=provider)
    try:
        p.run(advertiser.start())
        p.run(provider.start())
        p.advertiser = f"127.0.0.1:{advertiser.port}"
        p.run(provider.register(p.advertiser, offer(provider.endpoint)))
        yield p
    finally:
        p.run(provider.close())
        p.run(advertiser.close())
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.close()
        store.close()


def _cli(*args: str) -> Any:
    return runner.invoke(app, ["services", *args])


def test_list_shows_the_services_the_plan_allows(providers: Providers) -> None:
    r = _cli("list", "--premises", "office", "--advertiser", providers.advertiser)
    assert r.exit_code == 0, r.output
    (line,) = r.output.splitlines()
    ad = json.loads(line)
    assert (ad["id"], ad["provider"], ad["price_per_month"]) == (
        "comfort-optimiser",
        "comfort-optimiser",
        19.0,
    )
    r = _cli("list", "--premises", "office", "--advertiser", providers.advertiser, "--plan", "x")
    assert r.exit_code == 2 and "no plan 'x': use monitor, comfort, full" in r.output
    r = _cli("list", "--premises", "office", "--advertiser", "nowhere")
    assert r.exit_code == 2 and "'nowhere' is not HOST:PORT" in r.output


def test_subscribe_relays_then_unsubscribes_and_status_shows_none(providers: Providers) -> None:
    r = _cli(
        "subscribe",
        "comfort-optimiser",
        "--premises",
        "office",
        "--advertiser",
        providers.advertiser,
        "--for",
        "0.5",
        "--no-mdns",
    )
    assert r.exit_code == 0, r.output
    lines = [json.loads(x) for x in r.output.splitlines() if x.startswith("{")]
    sid = lines[0]["subscription"]
    assert lines[0]["service"] == "comfort-optimiser" and lines[0]["open"] is True
    assert lines[-1] == {"unsubscribed": sid}
    assert sid not in providers.provider.subscribers  # the provider was told
    assert _cli("status").output.strip() == "no subscriptions"
    store = Store(sqlite_url(Path("openmeg-demo.db")))
    try:
        actions = [r.action for r in audit_log_of(store, env_keystore()).records()]
    finally:
        store.close()
    assert actions == ["provisioning.subscribed", "provisioning.unsubscribed"]


def test_unsubscribe_deletes_a_left_over_key_and_refuses_an_unknown_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    keys = env_keystore()
    keys.put("provisioning/sub-0123456789abcdef/message-key", b"\x01" * 32)
    assert _cli("status").output.split() == ["sub-0123456789abcdef"]
    r = _cli("unsubscribe", "sub-0123456789abcdef")
    assert r.exit_code == 0, r.output
    assert keys.get("provisioning/sub-0123456789abcdef/message-key") is None
    r = _cli("unsubscribe", "sub-0123456789abcdef")
    assert r.exit_code == 2 and "no subscription sub-0123456789abcdef" in r.output
