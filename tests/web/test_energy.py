"""Energy views and history charts in headless Chromium (Debian's package, driven by Playwright),
on a live MEG that ran some minutes first: a history chart with labelled axes (the unit on y, the
site's local times with a date on x) that answers a zoom (a drag narrows the x range shown and
fetches the span again at a finer resolution); the energy view's totals with units and its
self-sufficiency. Screenshots are kept in test-artifacts/energy (or $OPENMEG_ARTIFACTS)."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from urllib.parse import parse_qs, urlparse

import pytest
from playwright.sync_api import Browser, Page, expect

from tests.api.harness import Harness
from tests.web.pages import artifacts, sign_in

ARTIFACTS = artifacts("energy")
MEG_MINUTES = 12


@pytest.fixture(scope="module")
def h(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Harness]:
    with Harness(tmp_path_factory.mktemp("energy-web"), step_every_s=0.005) as harness:
        # some MEG minutes first, so that there is history (stored by the historian)
        deadline = time.monotonic() + 120
        while harness.clock.now().timestamp() - 1780329600 < MEG_MINUTES * 60:  # 16:00Z
            assert time.monotonic() < deadline, "the MEG did not run its minutes in 2 min"
            time.sleep(0.5)
        harness.call(harness.meg.historian.pump())
        harness.meg.historian.flush()
        harness.step_every_s = 0.05
        yield harness


def _chart(page: Page) -> dict[str, str]:
    return page.eval_on_selector("#history-chart", "el => ({...el.dataset})")  # type: ignore[no-any-return]


def test_a_history_chart_has_labelled_axes_and_answers_a_zoom(h: Harness, browser: Browser) -> None:
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    sign_in(page, h.url, "op")
    # the device and point of a PV inverter, today (a span that fetches 1-minute means)
    expect(page.locator("#history-device option[value='pv-h01']")).to_be_attached(timeout=10_000)
    page.select_option("#history-device", "pv-h01")
    page.select_option("#history-point", "p_kw")
    page.select_option("#history-period", "today")
    with page.expect_request(lambda r: "/points/pv-h01/p_kw/history" in r.url) as first:
        page.click("#history-show")
    assert "resolution=1min" in first.value.url
    expect(page.locator("#history-title")).to_have_text("pv-h01 · p_kw · kW", timeout=5_000)
    chart = page.locator("#history-chart canvas")
    expect(chart).to_be_visible()
    expect(page.locator("#history-chart")).to_have_attribute("data-resolution", "1min")
    page.wait_for_function("document.querySelector('#history-chart').dataset.xTicks")
    before = _chart(page)
    # the y axis says the point and its unit; the x axis the site's local time, with a date
    assert before["yLabel"] == "p_kw (kW)"
    ticks = json.loads(before["xTicks"])
    assert len(ticks) >= 3, ticks
    assert all(re.fullmatch(r"\d\d:\d\d(\n\d{4}-\d\d-\d\d)?", t) for t in ticks), ticks
    assert "\n2026-06-01" in ticks[0]  # the date, in the site's zone (CEST: 1 June, UTC 31 May)
    # local midnight to now: the day began at 00:00 CEST, 22:00 UTC the day before
    assert ticks[0].startswith("00:00")
    assert int(before["xMin"]) == 1780264800_000  # 2026-05-31T22:00Z
    # the browser's short name of CEST (UTC+2) in the page's locale
    expect(page.locator("#history-caption")).to_contain_text("GMT+2")
    expect(page.locator("#history-caption")).to_contain_text("1-minute means")
    page.screenshot(path=str(ARTIFACTS / "1-history-today.png"), full_page=True)

    # zoom: drag across the last part of the chart, where the MEG ran
    # the mouse works in the viewport: bring the chart into it once the views above it are
    # drawn (the diagram grows the page as it is built)
    over = page.locator("#history-chart .u-over")
    over.scroll_into_view_if_needed()
    page.wait_for_timeout(300)
    over.scroll_into_view_if_needed()
    box = over.bounding_box()
    assert box is not None
    assert box["y"] >= 0 and box["y"] + box["height"] <= 1000, box  # within the viewport
    x0, x1 = box["x"] + box["width"] * 0.955, box["x"] + box["width"] * 0.99
    y = box["y"] + box["height"] / 2
    with page.expect_request(lambda r: "/points/pv-h01/p_kw/history" in r.url) as zoom:
        page.mouse.move(x0, y)
        page.mouse.down()
        page.mouse.move((x0 + x1) / 2, y, steps=4)
        page.mouse.move(x1, y, steps=4)
        page.mouse.up()
    assert "resolution=raw" in zoom.value.url  # finer than 1-minute means
    expect(page.locator("#history-chart")).to_have_attribute("data-resolution", "raw")
    after = _chart(page)
    span_before = int(before["xMax"]) - int(before["xMin"])
    span_after = int(after["xMax"]) - int(after["xMin"])
    assert span_after < span_before / 10, (span_before, span_after)
    assert int(after["xMin"]) > int(before["xMin"])
    assert int(after["count"]) > 0  # the stored values of the zoomed span
    expect(page.locator("#history-reset")).to_be_enabled()
    page.screenshot(path=str(ARTIFACTS / "2-history-zoomed.png"), full_page=True)

    # reset zoom: back to the day, and growing as values arrive on the stream
    with page.expect_request(lambda r: "resolution=1min" in r.url):
        page.click("#history-reset")
    page.wait_for_function("document.querySelector('#history-chart').dataset.resolution === '1min'")
    assert int(_chart(page)["xMin"]) == int(before["xMin"])
    expect(page.locator("#history-reset")).to_be_disabled()
    counted = int(_chart(page)["count"])
    page.wait_for_function(
        f"Number(document.querySelector('#history-chart').dataset.count) > {counted}",
        timeout=10_000,
    )

    # yesterday: the site's local day before, midnight to midnight (CEST, UTC+2)
    page.select_option("#history-period", "yesterday")
    with page.expect_request(lambda r: "/history" in r.url) as asked:
        page.click("#history-show")
    q = parse_qs(urlparse(asked.value.url).query)
    assert (q["start"], q["end"]) == (["2026-05-30T22:00:00.000Z"], ["2026-05-31T22:00:00.000Z"])
    assert q["resolution"] == ["1min"]
    # a period of one's own, in the site's local time: over 2 days, 15-minute means
    page.select_option("#history-period", "custom")
    page.fill("#history-from", "2026-05-25T06:00")
    page.fill("#history-to", "2026-06-01T12:30")
    with page.expect_request(lambda r: "/history" in r.url) as asked:
        page.click("#history-show")
    q = parse_qs(urlparse(asked.value.url).query)
    assert (q["start"], q["end"]) == (["2026-05-25T04:00:00.000Z"], ["2026-06-01T10:30:00.000Z"])
    assert q["resolution"] == ["15min"]
    expect(page.locator("#history-caption")).to_contain_text("15-minute means")

    # any point of any device: the state of charge of a battery, the last hour
    page.select_option("#history-device", "bess-community")
    page.select_option("#history-point", "soc")
    page.select_option("#history-period", "hour")
    page.click("#history-show")
    expect(page.locator("#history-title")).to_have_text("bess-community · soc · ratio")
    expect(page.locator("#history-chart")).to_have_attribute("data-y-label", "soc (ratio)")
    expect(page.locator("#history-chart")).to_have_attribute("data-resolution", "raw")
    page.screenshot(path=str(ARTIFACTS / "3-history-soc.png"), full_page=True)

    # from the single-line view: a device's trend opens its history
    page.click("#node-pv-h03")
    page.click("#command-trend")
    expect(page.locator("#history-title")).to_have_text("pv-h03 · p_kw · kW", timeout=5_000)
    page.close()


def test_the_energy_view_shows_todays_totals_and_self_sufficiency(
    h: Harness, browser: Browser
) -> None:
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    sign_in(page, h.url, "op")
    view = page.locator("#view-energy")
    expect(view).to_be_visible()
    expect(page.locator("#energy-when")).to_contain_text("Today: 2026-06-01 00:00:00 GMT+2")
    kwh = re.compile(r"^\d[\d,]*\.\d kWh$")
    for flow in ("pv", "wind", "battery_discharge", "grid_import", "homes", "commerce"):
        expect(page.locator(f'tr[data-flow="{flow}"] td.num')).to_have_text(kwh)
    pv = page.locator('tr[data-flow="pv"] td.num').inner_text()
    assert float(pv.split()[0].replace(",", "")) > 0  # the sun still shone from 18:00 CEST
    expect(page.locator("#energy-self-sufficiency")).to_have_text(re.compile(r"^\d{1,3} %$"))
    expect(page.locator("#energy-self-consumption")).to_have_text(re.compile(r"^\d{1,3} %$"))
    # the same figures as the API's
    with h.client("operator") as op:
        e = op.get("/api/v1/energy").json()
    shown = int(page.locator("#energy-self-sufficiency").inner_text().split()[0])
    assert abs(shown - 100 * e["self_sufficiency"]) <= 2
    # the flow picture: grid, PV, wind, CHP, fuel cell, batteries, homes, heat; labels as text
    for n in ("grid", "pv", "wind", "chp", "fuel_cell", "battery", "homes", "heat", "hub"):
        expect(page.locator(f'#energy-flow g[data-node="{n}"]')).to_be_visible()
    expect(page.locator('#energy-flow g[data-node="pv"] .node-value')).to_have_text(kwh)
    page.locator("#view-energy").screenshot(path=str(ARTIFACTS / "4-energy-today.png"))
    page.click("#energy-month")
    expect(page.locator("#energy-when")).to_contain_text("This month: 2026-06-01 00:00:00 GMT+2")
    expect(page.locator("#energy-month")).to_have_attribute("aria-pressed", "true")
    page.locator("#view-energy").screenshot(path=str(ARTIFACTS / "5-energy-month.png"))
    page.close()


def test_a_prosumer_sees_the_energy_of_their_own_premises(h: Harness, browser: Browser) -> None:
    page = browser.new_page(viewport={"width": 390, "height": 844})
    sign_in(page, h.url, "pro-h01")
    expect(page.locator('tr[data-flow="homes"] td.num')).to_have_text(re.compile(r"kWh$"))
    expect(page.locator('#energy-flow g[data-node="hub"]')).to_contain_text("My premises")
    assert page.locator('tr[data-flow="commerce"]').count() == 0  # nobody else's
    assert page.locator('#energy-flow g[data-node="wind"]').count() == 0
    # their own points only in the history picker
    devices = page.eval_on_selector_all("#history-device option", "os => os.map(o => o.value)")
    assert set(devices) <= {"pv-h01", "bess-h01", "m-h01", "load-h01", "pcc"}, devices
    page.screenshot(path=str(ARTIFACTS / "6-prosumer-energy.png"), full_page=True)
    page.close()
