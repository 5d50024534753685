"""Benchmark: the API of a live MEG as `openmeg run` serves it (devices on Modbus TCP, the
control cycle every second, the API in the same event loop).

1. Live snapshot reads (GET /api/v1/live) by 100 concurrent clients for 10 s, driven by wrk
   (Debian's package) from another process: requests per second and p99 latency.
2. WebSocket fan-out: 1,000 subscribers (in another process) to the stream at 1 Hz for 15 s;
   the delay from the frame leaving the server to its arrival, p99.
"""

from __future__ import annotations

import asyncio
import json
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
from datetime import UTC, datetime
from pathlib import Path

from openmeg.app import LiveApi, LiveMeg
from openmeg.core.bus import InProcessBus
from openmeg.core.clock import SimClock, WallClock
from openmeg.core.site import load_site
from openmeg.core.store import Store, sqlite_url

PASSWORD = "benchmark password"
SUBSCRIBERS = 1_000


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class LiveServer:
    """The MEG and its API in a thread of their own, stepping once a second in real time."""

    def __init__(self, folder: Path) -> None:
        self.folder, self.port = folder, free_port()
        self.loop = asyncio.new_event_loop()
        self.ready = threading.Event()
        self.thread = threading.Thread(target=self._main, daemon=True)

    def _main(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.run_until_complete(self._start())
        self.ready.set()
        self.loop.run_forever()

    async def _start(self) -> None:
        store = Store(sqlite_url(self.folder / "meg.db"))
        store.create_schema()
        self.meg = LiveMeg(
            load_site("demo"),
            clock=SimClock(datetime.now(UTC).replace(microsecond=0), speed=1.0),
            bus=InProcessBus(),
            store=store,
            modbus_port=0,
        )
        await self.meg.start()
        self.api = LiveApi(self.meg, WallClock(), port=self.port)
        await self.api.start()
        self.api.services.identities.create(
            "bench", "operator", secret=PASSWORD, now=datetime.now(UTC)
        )
        self.stop = asyncio.Event()
        self.task = asyncio.create_task(self.meg.run(self.stop))

    def token(self) -> str:
        import httpx

        r = httpx.post(
            f"http://127.0.0.1:{self.port}/api/v1/auth/token",
            data={"grant_type": "password", "username": "bench", "password": PASSWORD},
        )
        return str(r.json()["access_token"])


def wrk(port: int, token: str) -> tuple[float, float]:
    out = subprocess.run(
        [
            shutil.which("wrk") or "wrk",
            "-t2",
            "-c100",
            "-d10s",
            "--latency",
            "-H",
            f"Authorization: Bearer {token}",
            f"http://127.0.0.1:{port}/api/v1/live",
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    value, unit = re.search(r"99%\s+([\d.]+)(us|ms|s)", out).groups()  # type: ignore[union-attr]
    p99_ms = float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    if errors:
        raise SystemExit(f"wrk saw {errors.group(1)} failed responses:\n{out}")
    return rps, p99_ms


SUBSCRIBER_SCRIPT = r"""
import asyncio, json, sys, time
import websockets

async def one(url, delays, stop):
    async with websockets.connect(url, max_queue=None, ping_interval=None) as ws:
        topics = {"topics": ["points", "modes"], "devices": ["cycle"]}  # a point a cycle
        await ws.send(json.dumps({"subscribe": topics}))
        while not stop.is_set():
            try:
                text = await asyncio.wait_for(ws.recv(), 0.5)
            except asyncio.TimeoutError:
                continue
            now = time.time()  # taken first: what follows is the subscriber's own work
            if now > warm and '"points"' in text:
                sent = float(text[12:text.index(",")])  # {"sent_at": 1764357000.123, ...
                delays.append((now - sent) * 1000.0)

async def main(url, n, seconds):
    global warm
    delays, stop = [], asyncio.Event()
    warm = time.time() + 5.0  # connections settle first
    tasks = []
    for i in range(n):
        tasks.append(asyncio.create_task(one(url, delays, stop)))
        if i % 100 == 99:
            await asyncio.sleep(0.05)
    await asyncio.sleep(5.0 + seconds)
    stop.set()
    results = await asyncio.gather(*tasks, return_exceptions=True)
    failed = [repr(r) for r in results if isinstance(r, BaseException)]
    print(json.dumps({"delays": delays, "failed": failed[:3], "n_failed": len(failed)}))

asyncio.run(main(sys.argv[1], int(sys.argv[2]), float(sys.argv[3])))
"""


def fanout(port: int, token: str, processes: int = 2) -> tuple[float, int]:
    """Subscribers in ``processes`` processes (one Python process reading 1,000 sockets
    would measure its own queue more than the server's delivery)."""
    url = f"ws://127.0.0.1:{port}/api/v1/stream?token={token}"
    each = str(SUBSCRIBERS // processes)
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", SUBSCRIBER_SCRIPT, url, each, "15"],
            stdout=subprocess.PIPE,
            text=True,
        )
        for _ in range(processes)
    ]
    delays: list[float] = []
    for p in procs:
        out, _ = p.communicate(timeout=120)
        result = json.loads(out)
        if result["n_failed"]:
            raise SystemExit(f"{result['n_failed']} subscribers failed: {result['failed']}")
        delays += result["delays"]
    delays.sort()
    if not delays:
        raise SystemExit("no frame reached the subscribers")
    return delays[int(0.99 * (len(delays) - 1))], len(delays)


def main() -> None:
    with tempfile.TemporaryDirectory() as folder:
        server = LiveServer(Path(folder))
        server.thread.start()
        server.ready.wait(60)
        token = server.token()
        rps, p99 = wrk(server.port, token)
        fan_p99, frames = fanout(server.port, token)
        cycle_ms = server.meg.status.cycle_ms
        server.loop.call_soon_threadsafe(server.stop.set)
    print(f"# {frames} frames delivered to {SUBSCRIBERS} subscribers; last cycle {cycle_ms:.1f} ms")
    for metric, value, unit, target in (
        ("api_rps", round(rps), "requests/s", ">=2000"),
        ("api_p99_ms", round(p99, 2), "ms", "<50"),
        ("ws_fanout_p99_ms", round(fan_p99, 2), "ms", "<100"),
    ):
        print(json.dumps({"metric": metric, "value": value, "unit": unit, "target": target}))


if __name__ == "__main__":
    main()
