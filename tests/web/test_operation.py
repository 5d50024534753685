"""The operator's operation views in headless Chromium (Debian's package, driven by Playwright):
the utility taken down from the simulator panel shows an islanding event and an alarm within
3 s; a command's event names who gave it and why; the voltage table lists every metered bus
with its EN 50160 band; a customer's meter day shows its VEE flags and versions; the simulator
panel is hidden for a prosumer and when the field is the site's own. Screenshots are kept in
test-artifacts/operation (or $OPENMEG_ARTIFACTS)."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator

import pandas as pd
import pytest
from playwright.sync_api import Browser, Page, expect

from openmeg.api.routes_views import meter_buses
from tests.api.harness import Harness, a_validated_meter_day
from tests.web.pages import artifacts, sign_in

ARTIFACTS = artifacts("operation")
TZ = "Europe/Rome"
DAY = "2026-05-31"  # the local day before the harness's start: closed
GAPS = ("2026-05-31 10:00", "2026-05-31 10:15")  # local interval starts the meter never sent


@pytest.fixture(scope="module")
def h(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Harness]:
    with Harness(tmp_path_factory.mktemp("operation")) as harness:
        yield harness


def _shot(page: Page, name: str) -> None:
    """The operation view and the simulator panel, each as a picture of its own (the header
    not sticky, so that it covers nothing of them)."""
    page.add_style_tag(content="header { position: static !important; }")
    page.locator("#view-operation").screenshot(path=str(ARTIFACTS / name))
    panel = page.locator("#sim-panel")
    if panel.is_visible():
        panel.screenshot(path=str(ARTIFACTS / name.replace(".png", "-simulator.png")))


def _local(t: str) -> pd.Timestamp:
    return pd.Timestamp(t, tz=TZ).tz_convert("UTC")


def _meter_day(h: Harness) -> None:
    """A day of m-h03's readings through the MDMS (two intervals never sent), validated by
    VEE (which estimates them), one estimate then edited by hand: versions 1 and 2."""
    a_validated_meter_day(h, DAY, GAPS)
    with h.client("operator") as op:
        r = op.post(
            "/api/v1/meters/m-h03/edits",
            json={
                "channel": "import",
                "interval_start": _local(GAPS[1]).isoformat(),
                "value_kwh": 0.3,
                "reason": "read off the meter's display",
            },
        )
        assert r.status_code == 201, r.text
        assert r.json() == {"version": 2}


def test_the_utility_taken_down_shows_an_islanding_event_and_an_alarm(
    h: Harness, browser: Browser
) -> None:
    page = browser.new_page(viewport={"width": 1500, "height": 1000})
    sign_in(page, h.url, "op")
    panel = page.locator("#sim-panel")
    expect(panel).to_be_visible()
    expect(page.locator("#mode")).to_have_text("GRID", timeout=5_000)
    page.click("#sim-utility-down")
    expect(page.locator("#confirm-text")).to_contain_text("utility outage")
    clicked = time.monotonic()
    page.click("#confirm-yes")
    island = page.locator('#events tr[data-category="mode"]').first
    expect(island).to_contain_text(
        "MEG now in island mode: the utility grid is down", timeout=3_000
    )
    alarm = page.locator('tr[data-alarm="pcc/island"]')
    expect(alarm).to_be_visible(timeout=3_000)
    assert time.monotonic() - clicked < 3.0
    expect(alarm).to_contain_text("warning")
    expect(page.locator("#mode")).to_have_text("ISLAND")
    # the simulated world's event names who took the utility down
    sim = page.locator('#events tr[data-category="simulation"]').first
    expect(sim).to_contain_text("the simulated utility grid goes down")
    expect(sim.locator("td.who")).to_have_text("op")
    _shot(page, "1-islanding-event-and-alarm.png")

    page.click("#sim-utility-up")
    page.click("#confirm-yes")
    # resynchronised once the sync check passes (the island's frequency comes back on a 60 s
    # secondary control): the alarm clears, the event log says so
    expect(page.locator("#mode")).to_have_text("GRID", timeout=45_000)
    expect(alarm).to_have_count(0, timeout=5_000)
    back = page.locator('#events tr[data-category="mode"]').first
    expect(back).to_contain_text("resynchronised", timeout=5_000)
    page.select_option("#event-filter", "alarm")
    expect(page.locator('#events tbody tr:not([data-category="alarm"])')).to_have_count(0)
    expect(page.locator("#events tbody tr").first).to_contain_text("MEG islanded: cleared")
    _shot(page, "2-resynchronised.png")
    page.close()


def test_a_command_event_shows_who_and_why(h: Harness, browser: Browser) -> None:
    with h.client("operator") as op:
        r = op.post(
            "/api/v1/commands",
            json={
                "device": "bess-community",
                "name": "p_set_kw",
                "value": 4.0,
                "reason": "hold the evening peak",
            },
        )
        assert r.status_code == 200, r.text
    page = browser.new_page(viewport={"width": 1500, "height": 1000})
    sign_in(page, h.url, "op")
    page.select_option("#event-filter", "command")
    row = page.locator('#events tr[data-category="command"]').first
    # done, or refused if the field did not answer in time (a loaded machine): either way the
    # event names who gave the command and why
    outcome = r"(done|refused: .+)"
    what = re.compile(rf"^op set bess-community/p_set_kw = 4\.0: {outcome}$")
    expect(row.locator("td").nth(3)).to_have_text(what, timeout=5_000)
    expect(row.locator("td.who")).to_have_text("op")
    expect(row.locator("td.why")).to_have_text("hold the evening peak")
    # times in the site's zone with the date (the browser's short name of CEST is GMT+2)
    expect(row.locator("td").first).to_have_text(re.compile(r"^2026-06-01 \d\d:\d\d:\d\d GMT\+2$"))
    # a command from the page, with the operator's reason in its confirmation
    page.evaluate(  # not awaited here: the command waits for its confirmation
        "() => { import('/static/core.js')"
        ".then((m) => m.command('bess-community', 'p_set_kw', 2)); }"
    )
    expect(page.locator("#confirm-text")).to_have_text("Set bess-community/p_set_kw to 2?")
    page.fill("#confirm-reason", "charge before the evening")
    page.click("#confirm-yes")
    row = page.locator('#events tr[data-category="command"]').first
    what = re.compile(rf"^op set bess-community/p_set_kw = 2\.0: {outcome}$")
    expect(row.locator("td").nth(3)).to_have_text(what, timeout=5_000)
    expect(row.locator("td.why")).to_have_text("charge before the evening")
    assert page.locator("#confirm-reason-row").is_hidden()
    page.add_style_tag(content="header { position: static !important; }")
    page.locator("#events-card").screenshot(path=str(ARTIFACTS / "3-command-who-why.png"))
    page.close()


def test_the_voltage_table_lists_the_metered_buses_with_their_bands(
    h: Harness, browser: Browser
) -> None:
    page = browser.new_page(viewport={"width": 1500, "height": 1000})
    sign_in(page, h.url, "op")
    buses = meter_buses(h.meg.site)
    rows = page.locator("#voltages tr[data-bus]")
    expect(rows).to_have_count(len(buses), timeout=5_000)
    for bus in ("Bus R11", "Bus I2", "Bus 0"):
        row = page.locator(f'#voltages tr[data-bus="{bus}"]')
        expect(row).to_contain_text(" V", timeout=5_000)
        expect(row.locator(".band")).to_have_text("within ±10 %")
        expect(row).to_have_class("band-0")
        cells = row.locator("td")
        volts = float(cells.nth(2).inner_text().removesuffix(" V").replace(",", ""))
        pu = float(cells.nth(3).inner_text())
        nominal = 20_000 / 3**0.5 if bus == "Bus 0" else 400 / 3**0.5  # the 20 kV side, LV
        assert pu == pytest.approx(volts / nominal, abs=0.0011)
    expect(page.locator("#voltage-extremes")).to_contain_text("lowest 0.9")
    page.locator("#voltages-card").screenshot(path=str(ARTIFACTS / "4-voltages.png"))
    page.close()


def test_a_customers_meter_data_shows_vee_flags_and_versions(h: Harness, browser: Browser) -> None:
    _meter_day(h)
    page = browser.new_page(viewport={"width": 1500, "height": 1200})
    sign_in(page, h.url, "op")
    # by default the MEG's yesterday and last month (its time, not the wall clock's)
    expect(page.locator("#meter-day")).to_have_value(DAY)
    expect(page.locator("#bills-period")).to_have_value("2026-05")
    page.select_option("#meter-pick", "m-h03")
    page.click("#meter-form button[type=submit]")
    summary = page.locator("#meter-summary")
    expect(summary).to_contain_text("m-h03 (customer h03), 2026-05-31: validated by VEE")
    expect(summary).to_contain_text("96 intervals (94 actual, 1 estimated, 1 edited)")
    expect(page.locator("#meter-intervals tbody tr")).to_have_count(96)
    estimated = page.locator('#meter-intervals tr[data-quality="estimated"]')
    expect(estimated).to_have_count(1)
    expect(estimated).to_contain_text("2026-05-31 10:00:00 GMT+2")
    expect(estimated.locator(".version")).to_have_text("v1")
    expect(estimated.locator(".rules")).not_to_be_empty()
    edited = page.locator('#meter-intervals tr[data-quality="edited"]')
    expect(edited).to_contain_text("2026-05-31 10:15:00 GMT+2")
    expect(edited).to_contain_text("0.300 kWh")
    expect(edited.locator(".version")).to_have_text("v2")
    expect(edited).to_contain_text("manual · op · read off the meter's display")
    actual = page.locator('#meter-intervals tr[data-quality="actual"]').first
    expect(actual.locator(".version")).to_have_text("v0")
    expect(actual).to_contain_text("0.250 kWh")
    estimated.scroll_into_view_if_needed()  # the estimated and edited intervals in the picture
    page.locator("#meter-card").screenshot(path=str(ARTIFACTS / "5-meter-data-vee.png"))
    # bills of a month with none issued, and the building's basic charge statement
    page.click("#bills-form button[type=submit]")
    expect(page.locator("#no-bills")).to_have_text("No bill issued for 2026-05.")
    statement = page.locator('.basic-charge[data-building="bldg1"]')
    expect(statement).to_contain_text("Basic charge statement, bldg1, 2026-05")
    # the statement, or why there is none (no readings of May here), never a raw API error
    expect(statement.locator("table, p.muted")).to_have_count(1)
    assert "Field required" not in statement.inner_text()
    assert '"loc"' not in statement.inner_text()
    page.locator("#bills-card").screenshot(path=str(ARTIFACTS / "6-bills.png"))
    page.close()


def test_the_simulator_panel_is_for_an_operator_of_a_simulated_field_only(
    h: Harness, browser: Browser
) -> None:
    page = browser.new_page(viewport={"width": 1400, "height": 900})
    sign_in(page, h.url, "pro-h01")
    expect(page.locator("#mine-body")).to_contain_text("m-h01", timeout=5_000)
    assert page.locator("#sim-panel").is_hidden()
    assert page.locator("#view-operation").is_hidden()
    page.screenshot(path=str(ARTIFACTS / "7-prosumer-no-simulator.png"), full_page=True)
    page.close()

    # an auditor reads the operation views, and has no simulator and no acknowledgement
    page = browser.new_page(viewport={"width": 1400, "height": 900})
    sign_in(page, h.url, "audit")
    expect(page.locator("#events tbody tr").first).to_be_visible(timeout=5_000)
    assert page.locator("#sim-panel").is_hidden()
    assert page.locator("#alarms button").count() == 0
    page.close()

    h.api.services.field_kind = "site"  # the MEG operating the site's own devices
    try:
        page = browser.new_page(viewport={"width": 1400, "height": 900})
        sign_in(page, h.url, "op")
        expect(page.locator("#voltages tr[data-bus]").first).to_be_visible(timeout=5_000)
        assert page.locator("#sim-panel").is_hidden()
        page.screenshot(path=str(ARTIFACTS / "8-site-field-no-simulator.png"), full_page=True)
        page.close()
        with h.client("operator") as op:
            r = op.post("/api/v1/sim/utility", json={"available": False})
            assert r.status_code == 409
            assert "site's own devices" in r.json()["detail"]
    finally:
        h.api.services.field_kind = "simulated"
