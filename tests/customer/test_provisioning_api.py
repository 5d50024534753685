"""The provisioning routes of the API: a prosumer lists the services their plan allows,
subscribes, sees the subscription and unsubscribes, each audited with who asked; another
customer's premises are refused."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import httpx
from fastapi import FastAPI

from openmeg.api import routes_services
from openmeg.api.auth import principal, scope, services
from openmeg.api.context import Scope
from openmeg.core.audit import AuditLog
from openmeg.core.clock import WallClock
from openmeg.core.identity import Principal
from tests.customer.provisioning_world import offer, world
from tests.customer.test_provisioning import FakeBas, discover_with


@dataclass
class Svc:
    audit: AuditLog
    clock: WallClock


async def test_a_prosumer_subscribes_and_unsubscribes_through_the_api(tmp_path: Path) -> None:
    bas = FakeBas()
    async with world(tmp_path, bas, discover_with(bas)) as w:
        await w.provider.register(w.advertiser_at, offer(w.provider.endpoint))
        w.service.advertiser = w.advertiser_at
        app = FastAPI()
        app.include_router(routes_services.router)
        routes_services.attach(app, {"office": w.service})
        app.dependency_overrides[scope] = lambda: Scope(
            everything=False, customers=frozenset({"office"})
        )
        app.dependency_overrides[principal] = lambda: Principal(
            name="olivia", role="prosumer", customer="office"
        )
        app.dependency_overrides[services] = lambda: Svc(audit=w.audit, clock=WallClock())
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://api") as api:
            base = "/api/v1/customers/office"
            r = await api.get(f"{base}/services")
            assert r.status_code == 200, r.text
            assert [a["id"] for a in r.json()] == ["comfort-optimiser"]
            r = await api.post(f"{base}/services/nothing-here/subscription")
            assert r.status_code == 409 and "no service 'nothing-here'" in r.text
            r = await api.post(f"{base}/services/comfort-optimiser/subscription")
            assert r.status_code == 200, r.text
            sub = r.json()
            assert (sub["service"], sub["devices"], sub["open"]) == ("comfort-optimiser", 2, True)
            assert "key" not in r.text
            r = await api.get(f"{base}/subscriptions")
            assert r.json() == [sub]
            r = await api.get("/api/v1/customers/h01/subscriptions")
            assert r.status_code == 403 and "another customer" in r.text
            r = await api.delete(f"{base}/subscriptions/{sub['subscription']}")
            assert r.json() == {"unsubscribed": sub["subscription"]}
            r = await api.delete(f"{base}/subscriptions/{sub['subscription']}")
            assert r.status_code == 404
            assert (await api.get(f"{base}/subscriptions")).json() == []
        asked = [(a, t) for a, t in ((r.actor, r.action) for r in w.audit.records())]
        assert ("olivia", "services.subscribe") in asked
        assert ("olivia", "services.unsubscribe") in asked
        assert [a for _, a in asked if a.startswith("provisioning.")] == [
            "provisioning.subscribed",
            "provisioning.unsubscribed",
        ]
