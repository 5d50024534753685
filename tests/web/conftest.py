"""The browser of the browser tests: one headless chromium per test module."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser

from tests.web.pages import chromium


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    yield from chromium()
