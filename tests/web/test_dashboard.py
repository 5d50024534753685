"""The dashboard in headless Chromium (Debian's package, driven by Playwright): log in, see the
single-line diagram update live, take the utility down and see island mode within 3 s,
acknowledge an alarm, open a trend; a prosumer sees their own. Screenshots are kept in
test-artifacts/dashboard (or $OPENMEG_ARTIFACTS)."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, expect

from openmeg.core.messages import AlarmMessage, alarm_topic
from tests.api.harness import START, Harness
from tests.web.pages import artifacts, sign_in

ARTIFACTS = artifacts("dashboard")


@pytest.fixture(scope="module")
def h(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Harness]:
    with Harness(tmp_path_factory.mktemp("web")) as harness:
        yield harness


def test_the_operator_runs_the_meg_from_the_dashboard(h: Harness, browser: Browser) -> None:
    page = browser.new_page(viewport={"width": 1400, "height": 900})
    t0 = time.monotonic()
    sign_in(page, h.url, "op")
    expect(page.locator("#node-bess-community .value")).to_contain_text("kW", timeout=5_000)
    assert time.monotonic() - t0 < 10  # quick to load
    # live: the MEG's time moves on screen
    clock = page.locator("#meg-time")
    expect(clock).not_to_have_text("–", timeout=5_000)
    first = clock.inner_text()
    expect(clock).not_to_have_text(first, timeout=3_000)
    expect(page.locator("#mode")).to_have_text("GRID")
    # the power each feeder takes, on its transformer in the single-line diagram
    flow = page.locator('#sld .flow-label[data-branch="Trafo I0-I1"]')
    expect(flow).to_have_text(re.compile(r"^\d+\.\d kW$"), timeout=3_000)
    page.screenshot(path=str(ARTIFACTS / "1-single-line.png"), full_page=True)

    # open the PCC switch (with confirmation): island mode shown within 3 s
    page.click("#switch-open")
    expect(page.locator("#confirm-text")).to_have_text("Set pcc/switch_command to 1?")
    clicked = time.monotonic()
    page.click("#confirm-yes")
    expect(page.locator("#mode")).to_have_text("ISLAND", timeout=3_000)
    assert time.monotonic() - clicked < 3.0
    expect(page.locator("#switch-state")).to_have_text("open")
    expect(page.locator("#utility-state")).to_have_text("down", timeout=3_000)
    page.screenshot(path=str(ARTIFACTS / "2-island.png"), full_page=True)
    page.click("#switch-close")
    page.click("#confirm-yes")
    # back to the grid once the sync check passes: seconds of the MEG's time after a short
    # island, the longer the island drifted (a loaded machine steps it slower)
    expect(page.locator("#mode")).to_have_text("GRID", timeout=45_000)

    # an alarm arrives and is acknowledged
    alarm = AlarmMessage(
        site="demo",
        source="sensor-chp1",
        code="vibration",
        text="vibration 7.1 mm/s",
        active=True,
        ts=START,
        severity="critical",
    )
    h.call(h.bus.publish(alarm_topic("demo", "sensor-chp1"), alarm))
    row = page.locator('tr[data-alarm="sensor-chp1/vibration"]')
    expect(row).to_be_visible(timeout=5_000)
    row.locator("button").click()
    expect(row).to_contain_text("acknowledged by op", timeout=5_000)
    page.screenshot(path=str(ARTIFACTS / "3-alarm-acknowledged.png"), full_page=True)

    page.close()


def test_a_prosumer_sees_their_own_energy(h: Harness, browser: Browser) -> None:
    page = browser.new_page(viewport={"width": 1400, "height": 900})
    sign_in(page, h.url, "pro-h01")
    expect(page.locator("#mine")).to_be_visible()
    expect(page.locator("#mine-body")).to_contain_text("m-h01", timeout=5_000)
    expect(page.locator("#node-pv-h01")).to_be_visible()
    expect(page.locator("#sld-title")).to_have_text("My premises")
    expect(page.locator("#node-pv-h01 .value")).to_have_text(re.compile(r"^PV \d+\.\d kW$"))
    expect(page.locator("#node-bess-h01 .value")).to_contain_text(" %", timeout=5_000)
    expect(page.locator("#meter-m-h01")).to_be_attached()
    # their premises only: no other premises, no lines, no switches of the MEG
    assert page.locator("#node-pv-h03").count() == 0
    assert page.locator("#sld .line, #sld .switch").count() == 0
    assert page.locator("#switch-open").is_hidden()  # no commands for a prosumer
    assert page.locator("#sim-panel").is_hidden()
    page.screenshot(path=str(ARTIFACTS / "5-prosumer.png"), full_page=True)
    page.close()
