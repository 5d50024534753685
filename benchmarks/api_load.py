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
import time
from datetime import UTC, datetime
from pathlib import Path

from openmeg.app import LiveApi, LiveMeg
from openmeg.cli.field_process import simulated_field
from openmeg.core.bus import InProcessBus
from openmeg.core.clock import SimClock, WallClock
from openmeg.core.keystore import KeyEncryptionKey, Keystore
from openmeg.core.keystore_kek import FAST_KDF
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
        start = datetime.now(UTC).replace(microsecond=0)
        anchor = time.time()
        self.field = simulated_field(
            "demo", start=start, anchor_epoch_s=anchor, speed=1.0, step_s=1.0, base_port=0
        )
        field = await self.field.__aenter__()
        self.meg = LiveMeg(
            load_site("demo"),
            clock=SimClock(start, speed=1.0, anchor_epoch_s=anchor),
            bus=InProcessBus(),
            store=store,
            keystore=Keystore.open(
                self.folder / "meg.keystore",
                KeyEncryptionKey.passphrase("benchmark passphrase", cost=FAST_KDF),
            ),
            addresses=field.addresses,
        )
        await self.meg.start()
        self.api = LiveApi(self.meg, WallClock(), port=self.port, field="simulated")
        await self.api.start()
        self.api.services.identities.create(
            "bench", "operator", secret=PASSWORD, now=datetime.now(UTC)
        )
        self.stop = asyncio.Event()
        self.task = asyncio.create_task(self.meg.run(self.stop))

    async def close(self) -> None:
        """Stop cycling, then the API, the MEG and the field's program."""
        self.stop.set()
        await self.task
        await self.api.stop()
        await self.meg.stop()
        await self.field.__aexit__(None, None, None)

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
# A thin WebSocket subscriber: each frame is timed as its bytes arrive, before any parsing,
# so that the figure is the server's delivery, not this process's own queue.
import asyncio, base64, json, os, re, sys, time
from urllib.parse import urlsplit

SENT = re.compile(rb'"sent_at": ([0-9.]+)')

class Subscriber(asyncio.Protocol):
    def __init__(self, path, delays, warm):
        self.path, self.delays, self.warm = path, delays, warm
        self.open, self.buffer, self.done = False, b"", asyncio.get_running_loop().create_future()

    def connection_made(self, transport):
        self.transport = transport
        key = base64.b64encode(os.urandom(16)).decode()
        transport.write((f"GET {self.path} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                         "Upgrade: websocket\r\nConnection: Upgrade\r\n"
                         f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n").encode())

    def data_received(self, data):
        now = time.time()
        if not self.open:
            self.buffer += data
            if b"\r\n\r\n" not in self.buffer:
                return
            head, _, data = self.buffer.partition(b"\r\n\r\n")
            if b" 101 " not in head.split(b"\r\n")[0]:
                self.done.set_exception(RuntimeError(head[:80].decode()))
                return
            self.open = True
            body = json.dumps({"subscribe": {"topics": ["points"], "devices": ["cycle"]}}).encode()
            mask = os.urandom(4)
            masked = bytes(b ^ mask[i % 4] for i, b in enumerate(body))
            self.transport.write(bytes([0x81, 0x80 | len(body)]) + mask + masked)
        if now > self.warm:
            for m in SENT.finditer(data):
                self.delays.append((now - float(m.group(1))) * 1000.0)

    def connection_lost(self, exc):
        if not self.done.done():
            self.done.set_result(None)

async def main(url, n, seconds):
    parts = urlsplit(url)
    loop = asyncio.get_running_loop()
    delays, warm = [], time.time() + 5.0  # the connections settle first
    conns, failed = [], []
    for i in range(n):
        try:
            _, proto = await loop.create_connection(
                lambda: Subscriber(f"{parts.path}?{parts.query}", delays, warm),
                parts.hostname, parts.port)
            conns.append(proto)
        except OSError as err:
            failed.append(repr(err))
    await asyncio.sleep(5.0 + seconds)
    failed += [repr(c.done.exception()) for c in conns if c.done.done() and c.done.exception()]
    for c in conns:
        c.transport.close()
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
        asyncio.run_coroutine_threadsafe(server.close(), server.loop).result(60)
    print(f"# {frames} frames delivered to {SUBSCRIBERS} subscribers; last cycle {cycle_ms:.1f} ms")
    for metric, value, unit, target in (
        ("api_rps", round(rps), "requests/s", ">=2000"),
        ("api_p99_ms", round(p99, 2), "ms", "<50"),
        ("ws_fanout_p99_ms", round(fan_p99, 2), "ms", "<100"),
    ):
        print(json.dumps({"metric": metric, "value": value, "unit": unit, "target": target}))


if __name__ == "__main__":
    main()
