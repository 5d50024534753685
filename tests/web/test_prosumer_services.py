"""The prosumer's app's Services panel in headless Chromium at phone width, against a real
advertisement server and the example provider: with no provisioning system for the premises it
says so; with one it lists what the plan allows, subscribes (the state shown), unsubscribes
after asking, and a refusal is shown in words. Screenshots in test-artifacts/prosumer-services."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import AbstractAsyncContextManager
from typing import Any

import pytest
from playwright.sync_api import Browser, Page, expect

from openmeg.api import routes_services
from tests.api.harness import Harness
from tests.customer.provisioning_world import World, offer, world
from tests.customer.test_provisioning import FakeBas, discover_with
from tests.web.pages import artifacts, sign_in

ARTIFACTS = artifacts("prosumer-services")
PHONE = {"width": 390, "height": 844}
ROW = "#mine-services li[data-service=comfort-optimiser]"


@pytest.fixture(scope="module")
def h(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Harness]:
    with Harness(tmp_path_factory.mktemp("prosumer-services-web")) as harness:
        yield harness


@pytest.fixture
def w(h: Harness, tmp_path: Any) -> Iterator[World]:
    """h01's provisioning system, an advertisement server and the provider, in the MEG's loop;
    attached to the API only when a test does so."""
    bas = FakeBas()
    cm: AbstractAsyncContextManager[World] = world(tmp_path, bas, discover_with(bas))
    started = h.call(cm.__aenter__())
    try:
        h.call(started.provider.register(started.advertiser_at, offer(started.provider.endpoint)))
        started.service.advertiser = started.advertiser_at
        yield started
    finally:
        routes_services.attach(h.api.app, {})
        h.call(cm.__aexit__(None, None, None))


def _services(page: Page) -> Any:
    return page.locator("#mine-services")


def test_no_provisioning_system_is_said_in_words(h: Harness, w: World, browser: Browser) -> None:
    page = browser.new_page(viewport=PHONE)
    try:
        sign_in(page, h.url, "pro-h01")
        expect(page.locator("#mine-card-services h3")).to_have_text("Services")
        expect(page.locator("#no-services")).to_have_text(
            "No third-party services are offered at your premises.", timeout=15_000
        )
    finally:
        page.close()


def test_a_prosumer_subscribes_sees_the_state_and_unsubscribes(
    h: Harness, w: World, browser: Browser
) -> None:
    routes_services.attach(h.api.app, {"h01": w.service})
    page = browser.new_page(viewport=PHONE)
    try:
        sign_in(page, h.url, "pro-h01")
        row = page.locator(ROW)
        expect(row.locator("b")).to_have_text("Comfort and cost optimiser", timeout=15_000)
        expect(row).to_contain_text(" · comfort-optimiser · USD 19.00 a month")
        expect(row.locator("p.muted")).to_have_text(
            "Pre-cools before price peaks and dims lighting in empty zones"
        )
        expect(row.locator(".service-state")).to_have_text("Not subscribed")
        row.locator("button[data-subscribe=comfort-optimiser]").click()
        expect(page.locator("#services-done")).to_have_text(
            "Subscribed to Comfort and cost optimiser.", timeout=20_000
        )
        (sub,) = w.service.provisioning.status()
        sid = str(sub["subscription"])
        assert sid in w.provider.subscribers
        expect(row.locator(".service-state")).to_have_text(
            f"Subscribed ({sid}): active, 2 devices shared"
        )
        expect(page.locator("#services-error")).to_have_text("")
        page.screenshot(path=str(ARTIFACTS / "subscribed.png"), full_page=True)

        row.locator(f"button[data-unsubscribe={sid}]").click()
        expect(page.locator("#confirm-text")).to_have_text(
            "Unsubscribe from Comfort and cost optimiser? It no longer manages your devices."
        )
        page.click("#confirm-yes")
        expect(page.locator("#services-done")).to_have_text(
            "Unsubscribed from Comfort and cost optimiser.", timeout=20_000
        )
        expect(row.locator(".service-state")).to_have_text("Not subscribed")
        assert w.service.provisioning.status() == []
        assert sid not in w.provider.subscribers
        asked = [(r.actor, r.action, r.target) for r in h.meg.audit.records()]
        assert ("pro-h01", "services.subscribe", "h01/comfort-optimiser") in asked
        assert ("pro-h01", "services.unsubscribe", f"h01/{sid}") in asked
        assert [a for _, a, _ in w.actions() if a.startswith("provisioning.")] == [
            "provisioning.subscribed",
            "provisioning.unsubscribed",
        ]
    finally:
        page.close()


def test_refusals_are_shown_in_words(h: Harness, w: World, browser: Browser) -> None:
    routes_services.attach(h.api.app, {"h01": w.service})
    page = browser.new_page(viewport=PHONE)
    try:
        sign_in(page, h.url, "pro-h01")
        row = page.locator(ROW)
        expect(row.locator(".service-state")).to_have_text("Not subscribed", timeout=15_000)
        # the provider goes away: the subscription is refused, and the page says why
        h.call(w.provider.close())
        with h.client("prosumer") as api:
            r = api.post("/api/v1/customers/h01/services/comfort-optimiser/subscription")
        assert r.status_code == 409, r.text
        detail = r.json()["detail"]
        row.locator("button[data-subscribe=comfort-optimiser]").click()
        expect(page.locator("#services-error")).to_have_text(
            f"Not subscribed: {detail}", timeout=20_000
        )
        expect(page.locator("#services-done")).to_have_text("")
        expect(row.locator(".service-state")).to_have_text("Not subscribed")
        # no advertisement server: the list cannot be had, said so
        w.service.advertiser = ""
        page.reload()
        expect(page.locator("#services-error")).to_have_text(
            "The services on offer cannot be listed: no advertisement server is configured "
            "for these premises",
            timeout=15_000,
        )
        expect(page.locator("#no-services")).to_have_text(
            "Your plan allows no service on offer just now."
        )
        assert re.fullmatch(r"[^<>]+", detail)
        page.screenshot(path=str(ARTIFACTS / "refused.png"), full_page=True)
    finally:
        page.close()
