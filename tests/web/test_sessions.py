"""Sessions that last, in headless Chromium (Debian's package, driven by Playwright): with
15-minute access tokens the dashboard stays signed in through 20 minutes of use, renewing its
token with the rotating refresh token and reconnecting the stream when the server closes it
(4401); once its session is revoked it goes back to the login page. Twenty minutes pass in a
few seconds: the page's timers run on Playwright's clock, the API's real time on a clock the
test moves by the same steps. Screenshots in test-artifacts/sessions (or $OPENMEG_ARTIFACTS)."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from playwright.sync_api import (
    Browser,
    BrowserContext,
    Page,
    Response,
    Route,
    expect,
)

from openmeg.core.clock import WallClock
from tests.api.harness import PASSWORD, Harness
from tests.web.pages import artifacts

ARTIFACTS = artifacts("sessions")
STEP_S = 60


@pytest.fixture(scope="module")
def h(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Harness]:
    with Harness(tmp_path_factory.mktemp("sessions"), wall=WallClock()) as harness:
        yield harness


@pytest.fixture
def context(browser: Browser) -> Iterator[BrowserContext]:
    ctx = browser.new_context(viewport={"width": 1400, "height": 900})
    ctx.clock.install()  # the page's timers and Date on a clock the test moves
    yield ctx
    ctx.close()


def signed_in(h: Harness, context: BrowserContext) -> tuple[Page, list[tuple[str, int]]]:
    """The operator's dashboard, signed in; the API answers it gets, (path, status), listed."""
    page = context.new_page()
    answers: list[tuple[str, int]] = []

    def seen(r: Response) -> None:
        if "/api/v1/" in r.url:
            answers.append((r.url.split("?")[0].removeprefix(h.url), r.status))

    page.on("response", seen)
    page.goto(h.url)
    page.fill("#username", "op")
    page.fill("#password", PASSWORD)
    page.click("button[type=submit]")
    expect(page.locator("#app")).to_be_visible(timeout=15_000)
    expect(page.locator("#meg-time")).not_to_have_text("–", timeout=10_000)
    return page, answers


def minutes_pass(h: Harness, page: Page, minutes: int) -> None:
    """``minutes`` of the page's and the API's time, a minute at a time, each with a moment
    of real time for what it sets off (a token renewed, the stream reconnected)."""
    wall = h.wall
    assert isinstance(wall, WallClock)
    for _ in range(minutes):
        wall.set_offset(wall.offset_s + STEP_S)
        page.clock.fast_forward(STEP_S * 1000)
        time.sleep(0.4)


def live(page: Page) -> None:
    """The page shows the MEG's values as they come: its clock moves within seconds."""
    clock = page.locator("#meg-time")
    first = clock.inner_text()
    expect(clock).not_to_have_text(first, timeout=10_000)


def test_the_dashboard_stays_signed_in_through_20_minutes_with_15_minute_tokens(
    h: Harness, context: BrowserContext
) -> None:
    page, answers = signed_in(h, context)
    session = page.evaluate("() => ({...sessionStorage})")
    assert session["openmeg-refresh"] and session["openmeg-token"]
    page.screenshot(path=str(ARTIFACTS / "1-signed-in.png"))
    began = h.wall.now()

    minutes_pass(h, page, 20)
    assert (h.wall.now() - began).total_seconds() >= 20 * 60
    time.sleep(1.0)
    expect(page.locator("#login")).to_be_hidden()
    expect(page.locator("#app")).to_be_visible()
    live(page)
    # the page renewed its token (at 11 min 15 s, three quarters of its life), and the stream the
    # server closed at 15 min with 4401 came back on a fresh one
    after = page.evaluate("() => ({...sessionStorage})")
    assert after["openmeg-token"] != session["openmeg-token"]
    assert after["openmeg-refresh"] != session["openmeg-refresh"]
    grants = [s for p, s in answers if p == "/api/v1/auth/token"]
    assert grants[0] == 200 and len(grants) >= 2 and set(grants) == {200}, grants
    refused = [(p, s) for p, s in answers if s == 401]
    assert refused == [], refused  # not one request went out on an expired token
    assert len(h.api.hub.clients) == 1  # the stream, reconnected, and only once
    svc = h.api.services
    assert svc.tokens.verify(after["openmeg-token"], now=svc.wall.now()).name == "op"
    actions = [r.action for r in svc.audit.records(limit=10_000)]
    assert "refresh_reused" not in actions
    page.screenshot(path=str(ARTIFACTS / "2-after-20-minutes.png"))


def test_without_a_refresh_the_dashboard_goes_to_the_login_page(
    h: Harness, context: BrowserContext
) -> None:
    page, _ = signed_in(h, context)
    svc = h.api.services
    assert svc.sessions.end_all("op", svc.wall.now(), "revoked by the test") >= 1
    minutes_pass(h, page, 10)
    expect(page.locator("#app")).to_be_visible()  # its access token is good for 15 min
    minutes_pass(h, page, 6)
    expect(page.locator("#login")).to_be_visible(timeout=10_000)
    expect(page.locator("#app")).to_be_hidden()
    assert page.evaluate("() => sessionStorage.getItem('openmeg-refresh')") is None
    page.screenshot(path=str(ARTIFACTS / "3-session-revoked-login.png"))


def test_a_renewal_that_cannot_reach_the_server_is_tried_again_not_a_sign_out(
    h: Harness, context: BrowserContext
) -> None:
    cut: list[str] = []

    def once_unreachable(route: Route) -> None:
        if "grant_type=refresh_token" in (route.request.post_data or "") and not cut:
            cut.append(route.request.url)
            route.abort("internetdisconnected")
        else:
            route.continue_()

    context.route("**/api/v1/auth/token", once_unreachable)
    page, answers = signed_in(h, context)
    minutes_pass(h, page, 20)
    assert len(cut) == 1  # the first renewal (at 11 min 15 s) did not get through
    expect(page.locator("#app")).to_be_visible()
    live(page)
    grants = [s for p, s in answers if p == "/api/v1/auth/token"]
    assert len(grants) >= 2 and set(grants) == {200}, grants
    page.screenshot(path=str(ARTIFACTS / "4-renewed-after-a-network-cut.png"))


def test_a_reloaded_page_renews_its_token_in_time_too(h: Harness, context: BrowserContext) -> None:
    page, answers = signed_in(h, context)
    minutes_pass(h, page, 5)
    page.reload()  # the session comes back from sessionStorage
    expect(page.locator("#app")).to_be_visible(timeout=15_000)
    minutes_pass(h, page, 15)
    expect(page.locator("#app")).to_be_visible()
    live(page)
    refused = [(p, s) for p, s in answers if s == 401]
    assert refused == [], refused  # renewed before it ran out, not after a refusal
