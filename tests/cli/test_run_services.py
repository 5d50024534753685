"""``openmeg run --services-certs DIR --advertiser HOST:PORT``: the MEG runs the provisioning
system of each premises whose certificates are in DIR, on its plan, attached to the API; a
prosumer's services are listed, subscribed and unsubscribed through it against a real
advertisement server and the example provider, and everything is closed at stop. Wrong
options are refused in one line."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from openmeg.cli import app
from openmeg.cli.run import premises_provisioning
from openmeg.core.audit import audit_log_of
from openmeg.core.clock import SimClock, WallClock
from openmeg.core.site import load_site
from openmeg.core.store import Store, sqlite_url
from openmeg.live import FieldWire, live_meg
from openmeg.protocols.provider_ca import ProviderAuthority
from openmeg.provider.advert_http import MtlsServer
from openmeg.provider.advert_identity import TlsIdentity
from openmeg.provider.advertisement import AdvertisementBoard
from openmeg.provider.comfort_optimiser import ComfortOptimiser
from openmeg.sim.field import Field
from tests.customer.provisioning_world import offer
from tests.field_harness import addresses
from tests.keys import test_keystore

runner = CliRunner()


async def test_run_attaches_each_premises_provisioning_system_to_the_api(tmp_path: Path) -> None:
    site = load_site("demo")
    keys = test_keystore(tmp_path / "site.keystore")
    certs = tmp_path / "provisioning"
    ca = ProviderAuthority.create("providers", keys, certs)
    TlsIdentity.issue(ca, "premises-office", keys, certs)  # what openmeg services init writes
    provider_id = TlsIdentity.issue(ca, "comfort-optimiser", keys)
    board_id = TlsIdentity.issue(ca, "advertiser", keys)
    providers_db = Store(sqlite_url(tmp_path / "providers.db"))
    providers_db.create_schema()
    board = AdvertisementBoard(
        audit_log_of(providers_db, keys),
        WallClock().now,
        trusted=lambda fp: fp == provider_id.client_fingerprint,
    )
    advertiser = MtlsServer(board.routes(), board_id.server_context, on_refused=board.tls_refused)
    provider = ComfortOptimiser(provider_id)

    @asynccontextmanager
    async def field(start: datetime, anchor: float) -> AsyncIterator[FieldWire]:
        f = Field(site, clock=SimClock(start, anchor_epoch_s=anchor), base_port=0, horizon_h=2.0)
        await f.start()
        try:
            f.step()
            yield FieldWire(devices=addresses(f), bas={b.id: (b.host, b.port) for b in f.bas_plan})
        finally:
            await f.stop()

    await advertiser.start()
    await provider.start()
    try:
        at = f"127.0.0.1:{advertiser.port}"
        await provider.register(at, offer(provider.endpoint))
        provisioning = premises_provisioning(site, keys, certs, at, ["office=comfort"])
        started = live_meg(
            site,
            speed=1.0,
            step_s=1.0,
            store_url=sqlite_url(tmp_path / "meg.db"),
            keystore=keys,
            mqtt=None,
            field=field,
            live_options={},
            api_options={"port": 0},
            say=lambda _: None,
            provisioning=provisioning,
        )
        async with started as (meg, web):
            assert web is not None and web.admin_password
            (system,) = web.app.state.provisioning.values()
            assert list(web.app.state.provisioning) == ["office"]
            assert system.provisioning.plan.name == "comfort"
            async with httpx.AsyncClient(base_url=web.server.url, timeout=30) as api:
                r = await api.post(
                    "/api/v1/auth/token",
                    data={
                        "grant_type": "password",
                        "username": "admin",
                        "password": web.admin_password,
                    },
                )
                api.headers["Authorization"] = f"Bearer {r.json()['access_token']}"
                base = "/api/v1/customers/office"
                r = await api.get(f"{base}/services")
                assert r.status_code == 200, r.text
                assert [a["id"] for a in r.json()] == ["comfort-optimiser"]
                r = await api.post(f"{base}/services/comfort-optimiser/subscription")
                assert r.status_code == 200, r.text
                sub = r.json()
                assert (sub["service"], sub["open"]) == ("comfort-optimiser", True)
                assert sub["devices"] > 0
                assert sub["subscription"] in provider.subscribers
                assert (await api.get(f"{base}/subscriptions")).json() == [sub]
                r = await api.get("/api/v1/customers/h01/services")
                assert r.status_code == 404
                assert r.json()["detail"] == "no provisioning system runs for h01's premises"
            left = sub["subscription"]
        # stopped: the open subscription's key wiped, its endpoint closed, nothing attached
        assert web.app.state.provisioning == {}
        assert "wiped" in repr(system.provisioning.subscriptions[left].key)
        host, _, port = system.endpoint.endpoint.rpartition(":")
        with pytest.raises(OSError):
            await asyncio.open_connection(host, int(port))
        actions = [r.action for r in meg.audit.records()]
        assert "services.subscribe" in actions and "provisioning.subscribed" in actions
    finally:
        await provider.close()
        await advertiser.close()
        providers_db.close()


@pytest.mark.parametrize(
    ("args", "said"),
    [
        (["--advertiser", "127.0.0.1:1"], "--advertiser and --services-plan go with"),
        (["--services-certs", "nowhere"], "--services-certs needs --advertiser HOST:PORT"),
        (["--services-certs", "nowhere", "--advertiser", "x"], "'x' is not HOST:PORT"),
        (
            ["--services-certs", "nowhere", "--advertiser", "h:1", "--services-plan", "zz=full"],
            "no premises 'zz' in the site",
        ),
        (
            ["--services-certs", "nowhere", "--advertiser", "h:1", "--services-plan", "h01=gold"],
            "no plan 'gold': use monitor, comfort, full",
        ),
        (
            ["--services-certs", "nowhere", "--advertiser", "h:1"],
            "no premises' certificates in nowhere: run openmeg services init --premises ID",
        ),
        (["--services-certs", "nowhere", "--no-api"], "the services' provisioning needs the API"),
    ],
)
def test_run_refuses_wrong_services_options(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, args: list[str], said: str
) -> None:
    monkeypatch.chdir(tmp_path)
    r = runner.invoke(app, ["run", "--cycles", "1", "--no-status", *args])
    assert r.exit_code == 2, r.output
    assert said in r.output
