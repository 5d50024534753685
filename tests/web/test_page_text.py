"""The dashboard builds its elements and writes text as text: no HTML is ever parsed from data
(the headless-browser proof is tests/attacks/test_api.py's stored-XSS case)."""

from __future__ import annotations

import re
from pathlib import Path

WEB = Path(__file__).resolve().parents[2] / "openmeg" / "web"


def test_no_script_turns_text_into_html() -> None:
    scripts = sorted(WEB.glob("*.js"))  # openmeg's own modules, not the vendored libraries
    assert {s.name for s in scripts} >= {"core.js", "main.js", "sld.js"}
    for path in scripts:
        script = path.read_text()
        sinks = re.findall(r"innerHTML|outerHTML|insertAdjacentHTML|document\.write|eval\(", script)
        assert sinks == [], path.name
        assert "new Function" not in script, path.name
    core = (WEB / "core.js").read_text()
    assert "textContent" in (WEB / "sld.js").read_text() and "createElement" in core


def test_the_page_has_no_inline_handlers() -> None:
    page = (WEB / "index.html").read_text()
    assert re.findall(r"\son[a-z]+\s*=", page) == []
