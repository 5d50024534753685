"""Benchmark: the dashboard of the demo MEG in headless Chromium (Debian's package, driven by
Playwright), served as `openmeg run` serves it (devices on Modbus TCP, the control cycle every
second, the API and the stream in the same event loop).

1. First meaningful paint: from navigation to the single-line diagram painted with its live
   values (the page's ``openmeg-first-values`` mark, set in the frame after they are drawn),
   each load in a fresh browser context (empty cache), already signed in.
2. Update latency: from a WebSocket frame's arrival in the page to the frame after every view
   has taken it (the page's ``openmegUpdateMs``), over a minute of the live stream.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx
from playwright.sync_api import sync_playwright

sys.path.insert(0, str(Path(__file__).resolve().parent))
from api_load import PASSWORD, LiveServer

LOADS = 15
STREAM_S = 60.0


def session(port: int) -> dict[str, object]:
    r = httpx.post(
        f"http://127.0.0.1:{port}/api/v1/auth/token",
        data={"grant_type": "password", "username": "bench", "password": PASSWORD},
    )
    r.raise_for_status()
    return dict(r.json())


def signed_in_script(body: dict[str, object]) -> str:
    """Put a session in the page's storage before its scripts run (as a page reloaded while
    signed in has it)."""
    items = {
        "openmeg-token": body["access_token"],
        "openmeg-expires-at": str(int(time.time() * 1000 + float(str(body["expires_in"])) * 1000)),
    }
    if body.get("refresh_token"):
        items["openmeg-refresh"] = body["refresh_token"]
    return "".join(
        f"sessionStorage.setItem({json.dumps(k)}, {json.dumps(v)});" for k, v in items.items()
    )


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[round(q * (len(ordered) - 1))]


def main() -> None:
    chromium = shutil.which("chromium") or "/usr/bin/chromium"
    with tempfile.TemporaryDirectory() as folder:
        server = LiveServer(Path(folder))
        server.thread.start()
        if not server.ready.wait(60):
            raise SystemExit("the MEG did not start within 60 s")
        url = f"http://127.0.0.1:{server.port}/"
        paints: list[float] = []
        with sync_playwright() as p:
            browser = p.chromium.launch(
                executable_path=chromium, headless=True, args=["--no-sandbox"]
            )
            for _ in range(LOADS):
                context = browser.new_context(viewport={"width": 1400, "height": 900})
                context.add_init_script(signed_in_script(session(server.port)))
                page = context.new_page()
                page.goto(url)
                page.wait_for_function(
                    "performance.getEntriesByName('openmeg-first-values').length > 0",
                    timeout=30_000,
                )
                paints.append(
                    page.evaluate(
                        "performance.getEntriesByName('openmeg-first-values')[0].startTime"
                    )
                )
                context.close()
            context = browser.new_context(viewport={"width": 1400, "height": 900})
            context.add_init_script(signed_in_script(session(server.port)))
            page = context.new_page()
            page.goto(url)
            page.wait_for_function("window.openmegUpdateMs && window.openmegUpdateMs.length > 0")
            page.evaluate("window.openmegUpdateMs.length = 0")  # the first frames warm up
            page.wait_for_timeout(STREAM_S * 1000)
            updates: list[float] = page.evaluate("window.openmegUpdateMs.slice()")
            browser.close()
        asyncio.run_coroutine_threadsafe(server.close(), server.loop).result(60)
    if len(updates) < 10:
        raise SystemExit(f"only {len(updates)} frames reached the page in {STREAM_S:.0f} s")
    print(
        f"# {LOADS} cold loads: first paint median {statistics.median(paints):.0f} ms, "
        f"max {max(paints):.0f} ms; {len(updates)} frames in {STREAM_S:.0f} s, "
        f"update median {statistics.median(updates):.1f} ms, max {max(updates):.1f} ms"
    )
    for metric, value, unit, target in (
        ("dashboard_first_paint_ms", round(percentile(paints, 0.5)), "ms", "<1000"),
        ("dashboard_first_paint_max_ms", round(max(paints)), "ms", "<1000"),
        ("dashboard_update_p95_ms", round(percentile(updates, 0.95), 1), "ms", "<50"),
    ):
        print(json.dumps({"metric": metric, "value": value, "unit": unit, "target": target}))


if __name__ == "__main__":
    main()
