"""The prosumer's app in headless Chromium (Debian's package, driven by Playwright) at phone
width (390 x 844): their own values with units and nothing of another's, a header that fits on
its dark band, their bills, the alarms of their devices, and the trading reference prices
changed through the form, read back from the API and shown in the accounts (hand-checked to the
cent); refused values show why and change nothing. Screenshots are kept in
test-artifacts/prosumer (or $OPENMEG_ARTIFACTS)."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pandas as pd
import pytest
from playwright.sync_api import Browser, Page, expect

from openmeg.core.messages import AlarmMessage, alarm_topic
from openmeg.provider.billing import Bill, BillLine
from openmeg.provider.issued_bills import IssuedBills
from tests.api.harness import START, Harness
from tests.api.prosumer_data import yesterdays_trades
from tests.web.pages import artifacts, sign_in

ARTIFACTS = artifacts("prosumer")
PHONE = {"width": 390, "height": 844}
WINDOWS = [
    {"from_hour": 0, "to_hour": 11, "purchase": 0.05, "sale": 0.15},
    {"from_hour": 11, "to_hour": 24, "purchase": 0.12, "sale": 0.3},
]

# every text of the header: inside the header's box, inside the screen, and readable on the
# header's own background (WCAG contrast ratio)
HEADER_TEXT = """() => {
  const header = document.querySelector("header");
  const box = header.getBoundingClientRect();
  const rgb = (c) => (c.match(/[\\d.]+/g) || []).map(Number);
  const lum = ([r, g, b]) => {
    const f = (v) => { v /= 255; return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4; };
    return 0.2126 * f(r) + 0.7152 * f(g) + 0.0722 * f(b);
  };
  const background = (el) => {
    for (; el; el = el.parentElement) {
      const c = rgb(getComputedStyle(el).backgroundColor);
      if (c.length === 3 || (c.length === 4 && c[3] > 0)) return c.slice(0, 3);
    }
    return [255, 255, 255];
  };
  const out = [];
  const walker = document.createTreeWalker(header, NodeFilter.SHOW_TEXT);
  while (walker.nextNode()) {
    const node = walker.currentNode;
    if (!node.textContent.trim()) continue;
    const range = document.createRange();
    range.selectNodeContents(node);
    for (const r of range.getClientRects()) {
      const el = node.parentElement;
      const fg = lum(rgb(getComputedStyle(el).color)), bg = lum(background(el));
      out.push({ text: node.textContent.trim(), left: r.left, right: r.right, top: r.top,
        bottom: r.bottom, inside: r.left >= box.left - 0.5 && r.right <= box.right + 0.5 &&
          r.top >= box.top - 0.5 && r.bottom <= box.bottom + 0.5,
        contrast: (Math.max(fg, bg) + 0.05) / (Math.min(fg, bg) + 0.05) });
    }
  }
  return { width: box.width, texts: out };
}"""


@pytest.fixture(scope="module")
def h(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Harness]:
    with Harness(tmp_path_factory.mktemp("prosumer-web")) as harness:
        yield harness


def _may_bill(h: Harness) -> None:
    """The provider issued h01's bill of May 2026 (100 kWh at 0.11)."""
    site = h.meg.site.site
    start = pd.Timestamp("2026-05-01", tz=site.timezone)
    energy = BillLine(
        description="energy",
        quantity=Decimal("100"),
        unit="kWh",
        rate=Decimal("0.11"),
        amount=Decimal("11.00"),
    )
    bill = Bill(
        customer="h01",
        meter="m-h01",
        start=start,
        end=start + pd.DateOffset(months=1),
        tariff="Residential",
        lines=(energy,),
    )
    IssuedBills(h.store, site.id, site.timezone).issue(
        bill, period="2026-05", tariff_version="t", readings={}, now=START
    )


def _alarm(h: Harness, source: str) -> None:
    alarm = AlarmMessage(
        site="demo",
        source=source,
        code="overtemperature",
        text=f"{source} at 61 °C",
        active=True,
        ts=START,
        severity="warning",
    )
    h.call(h.bus.publish(alarm_topic("demo", source), alarm))


def _windows(h: Harness) -> list[dict[str, Any]]:
    with h.client("prosumer") as pro:
        r = pro.get("/api/v1/trading/h01")
        assert r.status_code == 200, r.text
        return list(r.json()["windows"])


def _set_sale(page: Page, window: int, value: str) -> None:
    row = page.locator("#trade-windows fieldset.window").nth(window)
    row.locator("input[name=sale]").fill(value)
    page.click("#trade-save")


def test_a_prosumer_at_phone_width_sees_their_own_and_changes_their_prices(
    h: Harness, browser: Browser
) -> None:
    yesterdays_trades(h)
    _may_bill(h)
    with h.client("prosumer") as pro:
        assert pro.put("/api/v1/trading/h01", json={"windows": WINDOWS}).status_code == 200
    for source in ("bess-h01", "pv-h03"):
        _alarm(h, source)

    page = browser.new_page(viewport=PHONE)
    sign_in(page, h.url, "pro-h01")
    mine = page.locator("#view-mine")
    expect(mine).to_be_visible()
    # their own values, with numbers and units
    expect(page.locator("#mine-meter")).to_have_text("m-h01", timeout=5_000)
    kw = re.compile(r"^-?\d+\.\d\d kW$")
    expect(page.locator('[data-device="pv-h01"] [data-point="power"] .value')).to_have_text(kw)
    expect(page.locator('[data-device="bess-h01"] [data-point="soc"] .value')).to_have_text(
        re.compile(r"^\d{1,3} %$")
    )
    expect(page.locator('[data-device="bess-h01"] [data-point="power"] .value')).to_have_text(
        re.compile(r"^(charging|discharging) \d+\.\d\d kW$|^idle 0\.00 kW$")
    )
    expect(page.locator("#mine-grid .value")).to_have_text(
        re.compile(r"^(importing|exporting) \d+\.\d\d kW$")
    )
    expect(page.locator("#mine-use .value")).to_have_text(re.compile(r"^\d+\.\d\d kW$"))
    expect(page.locator("#today-import .value")).to_have_text(re.compile(r"^[\d,]+\.\d\d kWh$"))
    expect(page.locator('[data-today="pv-h01"] .value')).to_have_text(
        re.compile(r"^[\d,]+\.\d\d kWh$")
    )
    # revenue per device: what it earns now at the market's price, and today's and the month's
    expect(page.locator('[data-revenue="pv-h01"] .rate')).to_have_text(
        re.compile(r"^\+?USD -?[\d,]+\.\d\d/h$")
    )
    expect(page.locator('[data-revenue="bess-h01"]')).to_contain_text("USD 0.00")
    # the app comes first, above the MEG's views
    assert mine.bounding_box()["y"] < page.locator("#view-diagram").bounding_box()["y"]
    # bills: the issued one, and friendly words where there is none
    expect(page.locator('[data-bill="2026-05"]')).to_contain_text("USD 11.00")
    expect(page.locator('[data-bill="2026-06"]')).to_have_text(
        "No bill yet for June 2026: a month is billed once it is over."
    )
    expect(page.locator('[data-bill="2026-04"]')).to_contain_text(
        "No bill issued yet for April 2026: a month is billed once it is over"
    )
    # the alarms of their devices, not another's
    expect(page.locator('[data-alarm="bess-h01/overtemperature"]')).to_be_visible(timeout=8_000)
    text = page.locator("body").inner_text()
    assert "h03" not in text, "another prosumer's device is on the page"
    assert "VEE" not in text and "HTTP" not in text

    # phone width: nothing wider than the screen, the header's text on its own dark band
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    header = page.evaluate(HEADER_TEXT)
    assert header["width"] <= PHONE["width"]
    assert header["texts"], "the header shows nothing"
    for t in header["texts"]:
        assert t["inside"] and t["right"] <= PHONE["width"], f"{t['text']!r} leaves the header"
        assert t["contrast"] >= 4.5, f"{t['text']!r} is hard to read ({t['contrast']:.1f}:1)"
    page.screenshot(path=str(ARTIFACTS / "1-phone-own-values.png"), full_page=True)

    # the accounts of yesterday: 4 kWh sold at 0.20 against a sale reference of 0.15 gained
    # 0.80 - 0.60 = 0.20; 2 kWh bought at 0.10 against 0.12 saved 0.24 - 0.20 = 0.04
    page.select_option("#accounts-period", "yesterday")
    sold = page.locator('[data-window="0-11"] [data-side="sold"]')
    expect(sold.locator("td").nth(1)).to_have_text("USD 0.60")
    expect(sold.locator("td").nth(0)).to_have_text("USD 0.80")
    expect(sold.locator("td").nth(2)).to_have_text("+USD 0.20")
    expect(page.locator('[data-window="11-24"] [data-side="bought"] td').nth(2)).to_have_text(
        "+USD 0.04"
    )
    expect(page.locator("#acc-against .value")).to_have_text("+USD 0.24")
    expect(page.locator("#acc-sales .value")).to_have_text("USD 0.80")
    # the accounts fit the phone's width, nothing hidden to the right
    assert page.evaluate(
        "[...document.querySelectorAll('#mine-body .scroll')]"
        ".every((el) => el.scrollWidth <= el.clientWidth)"
    )
    page.locator("#mine-card-trading").scroll_into_view_if_needed()
    page.screenshot(path=str(ARTIFACTS / "2-trading-before.png"), full_page=True)

    # the morning's sale reference raised to 0.18 through the form
    _set_sale(page, 0, "0.18")
    expect(page.locator("#trade-saved")).to_contain_text("Saved")
    assert page.locator("#trade-error").inner_text() == ""
    assert _windows(h) == [{**WINDOWS[0], "sale": 0.18}, WINDOWS[1]]
    # ... and the accounts follow: 4 x 0.18 = 0.72 at the reference, 0.08 gained, 0.12 in all
    expect(sold.locator("td").nth(1)).to_have_text("USD 0.72")
    expect(sold.locator("td").nth(2)).to_have_text("+USD 0.08")
    expect(page.locator("#acc-against .value")).to_have_text("+USD 0.12")
    expect(page.locator("#acc-sales .value")).to_have_text("USD 0.80")  # earned the same
    expect(page.locator("#trade-state")).to_contain_text("sell ≥ 0.180 USD/kWh")
    page.screenshot(path=str(ARTIFACTS / "3-trading-changed.png"), full_page=True)

    # refused values: the reason on the page (the API's where the API refused), nothing changed
    saved = _windows(h)
    for value, says in (
        ("1000", "Not changed: the sale reference price must be at most 5 per kWh"),
        ("0.01", "Not changed: the purchase reference must lie below the sale reference"),
        ("-0.2", "window 1: the sale price must not be negative"),
        ("NaN", 'window 1: the sale price is a number of USD/kWh, not "NaN"'),
        ("", "window 1: the sale price is a number of USD/kWh"),
    ):
        page.locator("#trade-saved").evaluate("el => { el.textContent = '' }")
        _set_sale(page, 0, value)
        expect(page.locator("#trade-error")).to_contain_text(says)
        assert page.locator("#trade-saved").inner_text() == ""
        assert _windows(h) == saved, f"{value!r} changed the reference prices"
        if value == "1000":
            page.screenshot(path=str(ARTIFACTS / "4-refused.png"), full_page=True)
    time.sleep(0.3)
    expect(page.locator("#acc-against .value")).to_have_text("+USD 0.12")
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    page.close()


def test_another_prosumer_sees_nothing_of_the_first(h: Harness, browser: Browser) -> None:
    _alarm(h, "bess-h01")
    page = browser.new_page(viewport=PHONE)
    sign_in(page, h.url, "pro-h05")
    expect(page.locator("#mine-meter")).to_have_text("m-h05", timeout=5_000)
    expect(page.locator('[data-device="bess-h05"] [data-point="soc"] .value')).to_have_text(
        re.compile(r"^\d{1,3} %$")
    )
    expect(page.locator("#trade-state")).to_contain_text("You do not trade")
    expect(page.locator("#no-mine-alarms")).to_have_text("No alarm on your devices.")
    assert "h01" not in page.locator("body").inner_text()
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    page.screenshot(path=str(ARTIFACTS / "5-another-prosumer.png"), full_page=True)
    page.close()
