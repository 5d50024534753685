"""The dashboard builds its elements and writes text as text: no HTML is ever parsed from data
(the headless-browser proof is tests/attacks/test_api.py's stored-XSS case)."""

from __future__ import annotations

import re
from pathlib import Path

WEB = Path(__file__).resolve().parents[2] / "openmeg" / "web"


def test_no_script_turns_text_into_html() -> None:
    script = (WEB / "app.js").read_text()
    sinks = re.findall(r"innerHTML|outerHTML|insertAdjacentHTML|document\.write|eval\(", script)
    assert sinks == []
    assert "textContent" in script and "createElement" in script


def test_the_page_has_no_inline_handlers() -> None:
    page = (WEB / "index.html").read_text()
    assert re.findall(r"\son[a-z]+\s*=", page) == []
