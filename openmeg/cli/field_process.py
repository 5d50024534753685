"""The simulated field started as its own program (``openmeg sim serve``) for ``openmeg run``:
the platform learns where its devices answer from the field's first line, and stops it last."""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime

from openmeg.core.addresses import DeviceAddress
from openmeg.core.errors import OpenMegError


@dataclass(frozen=True, kw_only=True)
class FieldProcess:
    """A running field: its control interface and its devices' addresses."""

    control_url: str
    addresses: tuple[DeviceAddress, ...]
    pid: int
    bas: dict[str, tuple[str, int]]
    """Where each BAS answers BACnet/IP: ``(host, port)`` by its id."""


@contextlib.asynccontextmanager
async def simulated_field(
    site: str,
    *,
    start: datetime,
    anchor_epoch_s: float,
    speed: float,
    step_s: float,
    base_port: int,
    state_file: str | None = None,
    timeout_s: float = 120.0,
) -> AsyncIterator[FieldProcess]:
    """``openmeg sim serve`` for ``site`` on the platform's clock (same start, speed and wall
    anchor), keeping its state in ``state_file``, until the block is left; ``OpenMegError``
    when it cannot start."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "openmeg",
        "sim",
        "serve",
        "--site",
        site,
        "--start",
        start.isoformat(),
        "--anchor",
        repr(anchor_epoch_s),
        "--speed",
        repr(speed),
        "--step",
        repr(step_s),
        "--base-port",
        str(base_port),
        "--control-port",
        "0",
        *(("--state", state_file) if state_file else ()),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    assert proc.stdout is not None and proc.stderr is not None
    try:
        line = await asyncio.wait_for(proc.stdout.readline(), timeout_s)
    except TimeoutError:
        line = b""
    if not line:
        with contextlib.suppress(ProcessLookupError):
            proc.kill()
        err = (await proc.stderr.read()).decode(errors="replace").strip()
        await proc.wait()
        raise OpenMegError(f"the simulated field did not start: {err or 'no answer'}")
    ready = json.loads(line)
    field = FieldProcess(
        control_url=str(ready["control"]),
        addresses=tuple(
            DeviceAddress(id=d["id"], host=d["host"], port=int(d["port"]), unit=int(d["unit"]))
            for d in ready["devices"]
        ),
        pid=proc.pid,
        bas={str(b["id"]): (str(b["host"]), int(b["port"])) for b in ready.get("bas", [])},
    )
    drain = asyncio.create_task(proc.stderr.read())
    try:
        yield field
    finally:
        if proc.returncode is None:
            proc.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(proc.wait(), 30)
        except TimeoutError:
            proc.kill()
            await proc.wait()
        await drain
