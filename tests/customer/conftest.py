"""Fixtures of the customer tests."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from openmeg.core.store import Store, sqlite_url


@pytest.fixture
def sqlite_store(tmp_path: Path) -> Iterator[Store]:
    """A store on a SQLite file of its own, closed after the test."""
    s = Store(sqlite_url(tmp_path / "meg.db"))
    s.create_schema()
    try:
        yield s
    finally:
        s.close()
