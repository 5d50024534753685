"""What the browser tests share: Debian's chromium driven by Playwright, signing in through the
login form, and the folder each test's screenshots are kept in."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect, sync_playwright

from tests.api.harness import PASSWORD


def artifacts(name: str) -> Path:
    """test-artifacts/NAME (or $OPENMEG_ARTIFACTS/NAME), made if it is not there."""
    folder = Path(os.environ.get("OPENMEG_ARTIFACTS", "test-artifacts")) / name
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def chromium() -> Iterator[Browser]:
    """Debian's chromium, headless (the browser fixture of tests/web/conftest.py)."""
    executable = shutil.which("chromium") or "/usr/bin/chromium"
    if not Path(executable).exists():
        pytest.fail("Debian's chromium is not installed: apt-get install chromium")
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=executable, headless=True, args=["--no-sandbox"])
        yield b
        b.close()


def sign_in(page: Page, url: str, user: str) -> None:
    """Open the dashboard at ``url`` and sign in as ``user`` through its form."""
    page.goto(url)
    page.fill("#username", user)
    page.fill("#password", PASSWORD)
    page.click("button[type=submit]")
    expect(page.locator("#app")).to_be_visible(timeout=10_000)
