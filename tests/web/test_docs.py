"""The API's documentation pages with no internet: headless Chromium (Debian's package) with
every request to anything but 127.0.0.1 aborted still renders Swagger UI at /docs with the
operations listed, and ReDoc at /redoc; Swagger UI does not even try another host (ReDoc asks
for its logo only). Screenshots
in test-artifacts/docs (or $OPENMEG_ARTIFACTS)."""

from __future__ import annotations

from collections.abc import Iterator
from urllib.parse import urlsplit

import httpx
import pytest
from playwright.sync_api import Browser, Page, Route, expect

from tests.api.harness import Harness
from tests.web.pages import artifacts

ARTIFACTS = artifacts("docs")


@pytest.fixture(scope="module")
def h(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Harness]:
    with Harness(tmp_path_factory.mktemp("docs")) as harness:
        yield harness


def offline_page(browser: Browser) -> tuple[Page, list[str]]:
    """A page that reaches 127.0.0.1 only; the requests it tried elsewhere are listed."""
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    blocked: list[str] = []

    def only_local(route: Route) -> None:
        url = route.request.url
        if urlsplit(url).hostname == "127.0.0.1":
            route.continue_()
        else:
            blocked.append(url)
            route.abort("internetdisconnected")

    page.route("**/*", only_local)
    return page, blocked


def test_swagger_ui_renders_with_no_internet(h: Harness, browser: Browser) -> None:
    page, blocked = offline_page(browser)
    failed: list[str] = []
    page.on("requestfailed", lambda r: failed.append(r.url))
    page.goto(f"{h.url}/docs")
    expect(page.locator(".swagger-ui .info .title")).to_contain_text("openmeg API")
    live = page.locator('.opblock-summary-path[data-path="/api/v1/live"]')
    expect(live).to_be_visible(timeout=10_000)
    token = page.locator('.opblock-summary-path[data-path="/api/v1/auth/token"]')
    expect(token).to_be_visible()
    doc = httpx.get(f"{h.url}/openapi.json").json()
    operations = sum(len(ops) for ops in doc["paths"].values())
    expect(page.locator(".opblock")).to_have_count(operations)  # every operation
    page.screenshot(path=str(ARTIFACTS / "docs-swagger-offline-top.png"))
    # an operation opens and shows its responses (the page's script runs: it is all there)
    live.click()
    expect(page.locator(".opblock.is-open .responses-wrapper")).to_be_visible()
    page.screenshot(path=str(ARTIFACTS / "docs-swagger-offline-live.png"))
    assert blocked == [] and failed == [], (blocked, failed)
    scripts = page.evaluate("[...document.scripts].map(s => s.src).filter(Boolean)")
    sheets = page.evaluate("[...document.styleSheets].map(s => s.href).filter(Boolean)")
    assert scripts == [f"{h.url}/static/docs/swagger-ui-bundle.js"], scripts
    assert sheets == [f"{h.url}/static/docs/swagger-ui.css"], sheets
    page.close()


def test_redoc_renders_with_no_internet(h: Harness, browser: Browser) -> None:
    page, blocked = offline_page(browser)
    page.goto(f"{h.url}/redoc")
    expect(page.get_by_role("heading", name="openmeg API")).to_be_visible(timeout=10_000)
    expect(page.get_by_text("/api/v1/live").first).to_be_attached()
    page.screenshot(path=str(ARTIFACTS / "docs-redoc-offline.png"))
    # the one thing ReDoc's own bundle asks elsewhere is its logo in the menu's footer
    assert set(blocked) <= {"https://cdn.redoc.ly/redoc/logo-mini.svg"}, blocked
    page.close()
