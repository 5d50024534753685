"""Benchmark: the DER data feeder polling SunSpec inverters on Modbus TCP (loopback only).

The slaves run in a process of their own (``python benchmarks/feeder_poll.py slaves N``): a lean
asyncio Modbus TCP server on 10 ports, 100 unit ids each, every device a SunSpec map of 150
registers (marker, common model 1, inverter model 103, controls model 123 that discovery needs
for the inverter family, end model). Before each measured cycle the slaves change registers
(every inverter's W, every tenth's cabinet temperature), so there is real change to deliver.

1. ``feeder_cycle_ms``: one ``DerDataFeeder.poll`` over 100 devices (subscribed to p_kw,
   energy_kwh, frequency_hz and temperature_c; one coalesced read each), median of 20.
2. ``feeder_cycle_1000_ms`` and ``raw_cycle_1000_ms``, in alternation on the same 1,000 slaves:
   the feeder's cycle, and the plain approach (one pymodbus ``AsyncModbusTcpClient`` per
   device, 125 registers each, reads gathered, nothing done with them); medians of 20, their
   ratio ``feeder_vs_raw_ratio``, and ``feeder_cpu_s_per_cycle`` (this process's CPU time per
   1,000-device feeder cycle, median).
3. ``feeder_latency_p50_ms`` / ``_p99_ms``: the slaves change one inverter's W every 5 ms at
   random while the feeder polls the 100 devices every 10 ms; from the change in the slave
   (CLOCK_MONOTONIC, the same clock in both processes) to the PointUpdate taken off the bus by a
   subscriber. It includes the wait for the next poll.
4. ``control_loop_ms`` (p50, p99): the demo MEG live, its simulated field a program of its own
   (``openmeg sim serve``, real time, 1 s steps) and the platform here (1 s control cycle):
   a load step of +-1 kW on home h01 (through the field's control interface) changes its
   meter's registers at a field step; the self-consumption controller's new setpoint for the
   home's battery arrives in the battery's own registers. From the first (the field's
   wall-clock time of the step) to the second (the wall-clock time the battery accepted the
   write that carries the new setpoint), over 30 steps, the platform's cycle half a cycle out
   of phase with the field's steps. Target: p99 under two control cycles.
"""

from __future__ import annotations

import asyncio
import json
import random
import statistics
import struct
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import IO, Any

from openmeg.core.bus import InProcessBus, Subscription
from openmeg.core.clock import WallClock
from openmeg.core.messages import PointUpdate
from openmeg.distribution.feeder import DerDataFeeder
from openmeg.distribution.feeder import Subscription as FeederSubscription

BASE = 40000
PORTS, UNITS = 10, 100
MEASURED = ("p_kw", "energy_kwh", "frequency_hz", "temperature_c")
CYCLES = 20


# ---------------------------------------------------------------- the slaves (their own process)


def inverter_map(i: int) -> tuple[bytearray, dict[str, int]]:
    """The registers of inverter ``i`` (bytes from 40000) and the byte offsets of W and TmpCab."""
    from openmeg.protocols.sunspec import DeviceMap

    dmap = DeviceMap([1, 103, 123], base=BASE)
    for name, value in (("Mn", "openmeg"), ("Md", "bench inverter"), ("SN", f"inv-{i:04d}")):
        dmap.set_raw(1, name, value)
    for name, raw in (("W_SF", 0), ("W", 1000 + i), ("Hz_SF", -2), ("Hz", 5000)):
        dmap.set_raw(103, name, raw)
    for name, raw in (("WH_SF", 0), ("WH", 12345 + i), ("Tmp_SF", -1), ("TmpCab", 250)):
        dmap.set_raw(103, name, raw)
    regs = bytearray(struct.pack(f">{len(dmap.registers)}H", *dmap.registers))
    block = dmap.block(103)
    offsets = {n: 2 * (block.address_of(n) - BASE) for n in ("W", "TmpCab")}
    return regs, offsets


class SlaveProtocol(asyncio.Protocol):
    """Function codes 3 and 16 over MBAP, for the units behind one port."""

    def __init__(self, units: dict[int, bytearray]) -> None:
        self.units = units
        self.buffer = b""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        buffer = self.buffer + data
        while len(buffer) >= 8:
            tid, _, length, unit, fc = struct.unpack_from(">HHHBB", buffer)
            if len(buffer) < 6 + length:
                break
            pdu, buffer = buffer[8 : 6 + length], buffer[6 + length :]
            self.transport.write(self.answer(tid, unit, fc, pdu))
        self.buffer = buffer

    def answer(self, tid: int, unit: int, fc: int, pdu: bytes) -> bytes:
        regs = self.units.get(unit)
        if regs is None:
            return struct.pack(">HHHBBB", tid, 0, 3, unit, fc | 0x80, 11)
        address, count = struct.unpack_from(">HH", pdu)
        start, end = 2 * (address - BASE), 2 * (address - BASE + count)
        if fc not in (3, 16) or start < 0 or end > len(regs) or not 1 <= count <= 125:
            return struct.pack(">HHHBBB", tid, 0, 3, unit, fc | 0x80, 2 if fc in (3, 16) else 1)
        if fc == 3:
            return struct.pack(">HHHBBB", tid, 0, 3 + 2 * count, unit, 3, 2 * count) + bytes(
                regs[start:end]
            )
        regs[start:end] = pdu[5 : 5 + 2 * count]
        return struct.pack(">HHHBBHH", tid, 0, 6, unit, 16, address, count)


async def slaves_main(n: int) -> None:
    """Serve ``n`` inverters; obey ``tick`` and ``churn`` lines on stdin, answer on stdout."""
    loop = asyncio.get_running_loop()
    devices = [inverter_map(i) for i in range(n)]
    servers, ports = [], []
    for p in range(PORTS):
        units = {u + 1: devices[p * UNITS + u][0] for u in range(UNITS) if p * UNITS + u < n}
        if not units:
            break
        server = await loop.create_server(lambda u=units: SlaveProtocol(u), "127.0.0.1", 0)  # type: ignore[misc]
        servers.append(server)
        ports.append(server.sockets[0].getsockname()[1])
    print(json.dumps({"ports": ports}), flush=True)
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    tick = 0
    while line := (await reader.readline()).decode().split():
        if line[0] == "tick":
            tick += 1
            for i, (regs, at) in enumerate(devices):
                regs[at["W"] : at["W"] + 2] = ((1000 + i + tick) % 30000).to_bytes(2, "big")
                if i % 10 == tick % 10:
                    regs[at["TmpCab"] : at["TmpCab"] + 2] = (250 + tick % 50).to_bytes(2, "big")
            print("ok", flush=True)
        elif line[0] == "churn":
            count, seconds, every_s = int(line[1]), float(line[2]), float(line[3])
            log, rng, seq = [], random.Random(7), 0
            end = time.monotonic() + seconds
            while time.monotonic() < end:
                await asyncio.sleep(every_s)
                seq += 1
                i = rng.randrange(count)
                regs, at = devices[i]
                w = 20000 + seq % 10000
                regs[at["W"] : at["W"] + 2] = w.to_bytes(2, "big")
                log.append((f"inv-{i:04d}", w, time.monotonic()))
            print(json.dumps({"changes": log}), flush=True)
    for server in servers:
        server.close()


# ---------------------------------------------------------------- the feeder's side


class Slaves:
    """The slave process and its line protocol."""

    def __init__(self, n: int) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, __file__, "slaves", str(n)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        self.ports: list[int] = json.loads(self._line())["ports"]

    def _line(self) -> str:
        out: IO[str] | None = self.proc.stdout
        assert out is not None
        line = out.readline()
        if not line:
            raise SystemExit("the slave process ended early")
        return line

    def send(self, command: str) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(command + "\n")
        self.proc.stdin.flush()

    async def tick(self) -> None:
        self.send("tick")
        await asyncio.to_thread(self._line)

    async def churn(self, count: int, seconds: float, every_s: float) -> list[Any]:
        self.send(f"churn {count} {seconds} {every_s}")
        return list(json.loads(await asyncio.to_thread(self._line))["changes"])

    def address(self, i: int) -> tuple[str, int, int]:
        return "127.0.0.1", self.ports[i // UNITS], i % UNITS + 1

    def stop(self) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.close()
        self.proc.wait(10)


async def connected_feeder(bus: InProcessBus, slaves: Slaves, n: int) -> DerDataFeeder:
    feeder = DerDataFeeder("bench", bus, WallClock(), poll_period_s=1.0, snapshot_every_s=1e9)
    for first in range(0, n, 100):
        await asyncio.gather(
            *(feeder.add(*slaves.address(i)) for i in range(first, min(n, first + 100)))
        )
    for point in MEASURED:  # polled every cycle, however often the benchmark asks
        feeder.subscribe(FeederSubscription(device="*", point=point, interval_s=0.0))
    return feeder


async def drain(sub: Subscription) -> int:
    n = sub.pending()
    for _ in range(n):
        await sub.get()
    return n


async def feeder_cycle(feeder: DerDataFeeder, sub: Subscription) -> tuple[float, float]:
    """One checked cycle: wall ms and CPU s."""
    cpu0, t0 = time.process_time(), time.perf_counter()
    report = await feeder.poll()
    wall, cpu = (time.perf_counter() - t0) * 1000.0, time.process_time() - cpu0
    if report.failed_devices:
        raise SystemExit(f"devices failed in a cycle: {report.failed_devices[:5]}")
    if await drain(sub) < len(feeder.links):
        raise SystemExit("the feeder delivered less than one change per device")
    return wall, cpu


async def cycles_100(slaves: Slaves) -> list[dict[str, Any]]:
    bus = InProcessBus()
    sub = await bus.subscribe("meg/bench/#")
    feeder = await connected_feeder(bus, slaves, 100)
    try:
        for _ in range(3):
            await slaves.tick()
            await feeder_cycle(feeder, sub)
        walls = []
        for _ in range(CYCLES):
            await slaves.tick()
            walls.append((await feeder_cycle(feeder, sub))[0])
        figures = [figure("feeder_cycle_ms", statistics.median(walls), "ms", "<25")]
        await bus.unsubscribe(sub)
        figures += await latency(slaves, feeder, bus)
    finally:
        feeder.close()
        await bus.close()
    return figures


async def latency(slaves: Slaves, feeder: DerDataFeeder, bus: InProcessBus) -> list[dict[str, Any]]:
    sub = await bus.subscribe("meg/bench/+/+/p_kw")
    seen: dict[tuple[str, int], float] = {}
    stop = asyncio.Event()

    async def poll_every_10_ms() -> None:
        next_at = time.monotonic()
        while not stop.is_set():
            await feeder.poll()
            next_at += 0.010
            await asyncio.sleep(max(0.0, next_at - time.monotonic()))

    async def take() -> None:
        async for _, msg in sub:
            assert isinstance(msg, PointUpdate)
            seen.setdefault((msg.device, round(msg.value * 1000)), time.monotonic())

    tasks = [asyncio.create_task(poll_every_10_ms()), asyncio.create_task(take())]
    changes = await slaves.churn(100, 6.0, 0.005)
    stop.set()
    await tasks[0]
    await bus.unsubscribe(sub)
    await tasks[1]
    delays = sorted(
        (seen[(d, w)] - t) * 1000.0 for d, w, t in changes[100:] if (d, w) in seen
    )  # the first half second: the poll loop settling
    if len(delays) < 0.9 * len(changes[100:]):
        raise SystemExit(f"only {len(delays)} of {len(changes) - 100} changes were delivered")
    return [
        figure("feeder_latency_p50_ms", delays[len(delays) // 2], "ms", None),
        figure("feeder_latency_p99_ms", delays[int(0.99 * (len(delays) - 1))], "ms", "<20"),
    ]


async def raw_clients(slaves: Slaves, n: int) -> tuple[Callable[[], Awaitable[float]], list[Any]]:
    from pymodbus.client import AsyncModbusTcpClient

    clients = []
    for i in range(n):
        host, port, unit = slaves.address(i)
        clients.append((AsyncModbusTcpClient(host, port=port, timeout=1.0, retries=0), unit))
    for first in range(0, n, 100):
        oks = await asyncio.gather(*(c.connect() for c, _ in clients[first : first + 100]))
        if not all(oks):
            raise SystemExit("pymodbus clients could not connect to the slaves")

    async def cycle() -> float:
        t0 = time.perf_counter()
        answers = await asyncio.gather(
            *(c.read_holding_registers(BASE, count=125, device_id=u) for c, u in clients)
        )
        wall = (time.perf_counter() - t0) * 1000.0
        if any(a.isError() for a in answers):
            raise SystemExit("a raw read failed")
        return wall

    return cycle, [c for c, _ in clients]


async def cycles_1000(slaves: Slaves) -> list[dict[str, Any]]:
    bus = InProcessBus()
    sub = await bus.subscribe("meg/bench/#")
    feeder = await connected_feeder(bus, slaves, 1000)
    raw_cycle, clients = await raw_clients(slaves, 1000)
    try:
        for _ in range(3):
            await slaves.tick()
            await feeder_cycle(feeder, sub)
            await raw_cycle()
        walls, cpus, raws = [], [], []
        for _ in range(CYCLES):  # in alternation: both see the same machine
            await slaves.tick()
            wall, cpu = await feeder_cycle(feeder, sub)
            walls.append(wall)
            cpus.append(cpu)
            await slaves.tick()
            raws.append(await raw_cycle())
    finally:
        feeder.close()
        for c in clients:
            c.close()
        await bus.close()
    wall, raw = statistics.median(walls), statistics.median(raws)
    return [
        figure("feeder_cycle_1000_ms", wall, "ms", "<250"),
        figure("raw_cycle_1000_ms", raw, "ms", None),
        figure("feeder_vs_raw_ratio", wall / raw, "", "<=1.25"),
        figure("feeder_cpu_s_per_cycle", statistics.median(cpus), "s", None),
    ]


# ---------------------------------------------------------------- the control loop (reserved)


CONTROL_CYCLE_S = 1.0
LOAD_STEPS = 30


async def control_loop_ms() -> list[float]:
    """The latencies (ms) of the control loop over the demo MEG, one per load step."""
    from datetime import UTC, datetime

    import httpx

    from openmeg.app import LiveMeg
    from openmeg.cli.field_process import simulated_field
    from openmeg.core.clock import SimClock
    from openmeg.core.keystore import KeyEncryptionKey, Keystore
    from openmeg.core.keystore_kek import FAST_KDF
    from openmeg.core.site import load_site
    from openmeg.core.store import Store, sqlite_url

    start, anchor = datetime(2026, 6, 1, 16, tzinfo=UTC), time.time()
    latencies: list[float] = []
    async with simulated_field(
        "demo",
        start=start,
        anchor_epoch_s=anchor,
        speed=1.0,
        step_s=CONTROL_CYCLE_S,
        base_port=0,
    ) as field:
        store = Store(sqlite_url(":memory:"))
        store.create_schema()
        keys_dir = tempfile.TemporaryDirectory()  # removed when the benchmark ends
        keys = keys_dir.name
        meg = LiveMeg(
            load_site("demo"),
            # its cycle half a cycle after the field's step, as an unaligned site would be on
            # average (on the field's own phase the loop takes only the poll and the write)
            clock=SimClock(start, speed=1.0, anchor_epoch_s=anchor + CONTROL_CYCLE_S / 2),
            bus=InProcessBus(),
            store=store,
            keystore=Keystore.open(
                Path(keys) / "meg.keystore",
                KeyEncryptionKey.passphrase("benchmark passphrase", cost=FAST_KDF),
            ),
            addresses=field.addresses,
            step_s=CONTROL_CYCLE_S,
        )
        await meg.start()
        stop = asyncio.Event()
        runner = asyncio.create_task(meg.run(stop))
        try:
            async with httpx.AsyncClient(base_url=field.control_url, timeout=10) as c:
                await asyncio.sleep(5.0)  # the batteries settle on their setpoints
                for i in range(LOAD_STEPS):
                    before = (await c.get("/field/devices/bess-h01/writes")).json()
                    held = _held_setpoint(before)
                    kw = 1.0 if i % 2 == 0 else -1.0
                    await c.post("/field/loads/load-h01/step", json={"kw": kw})
                    await asyncio.sleep(3 * CONTROL_CYCLE_S + random.random())
                    changed_at = (await c.get("/field/loads")).json()["load-h01"]
                    log = (await c.get("/field/devices/bess-h01/writes")).json()
                    for entry in log:
                        value = dict(entry["commands"]).get("p_set_kw")
                        fresh = entry["at"] > changed_at and value is not None
                        if fresh and (held is None or abs(value - held) > 0.5):
                            latencies.append((entry["at"] - changed_at) * 1000.0)
                            break
                        if value is not None:
                            held = value
        finally:
            stop.set()
            await runner
            await meg.stop()
            store.close()
    return latencies


def _held_setpoint(log: list[dict[str, Any]]) -> float | None:
    values = [dict(e["commands"]).get("p_set_kw") for e in log]
    held = [v for v in values if v is not None]
    return held[-1] if held else None


def control_loop_figures() -> list[dict[str, Any]]:
    """``control_loop_ms`` over the demo MEG: p50 and p99 of the load-step latencies."""
    lat = sorted(asyncio.run(control_loop_ms()))
    if len(lat) < LOAD_STEPS * 0.8:
        raise SystemExit(f"only {len(lat)} of {LOAD_STEPS} load steps reached the battery")
    target = f"<{2 * CONTROL_CYCLE_S * 1000:.0f}"
    return [
        figure("control_loop_p50_ms", statistics.median(lat), "ms", target),
        figure("control_loop_ms", lat[min(len(lat) - 1, int(0.99 * len(lat)))], "ms", target),
    ]


# ----------------------------------------------------------------


def figure(metric: str, value: float, unit: str, target: str | None) -> dict[str, Any]:
    out: dict[str, Any] = {"metric": metric, "value": round(value, 3), "unit": unit}
    if target is not None:
        out["target"] = target
    return out


async def feeder_figures() -> list[dict[str, Any]]:
    slaves = Slaves(PORTS * UNITS)
    try:
        return await cycles_100(slaves) + await cycles_1000(slaves)
    finally:
        slaves.stop()


def main() -> None:
    figures = asyncio.run(feeder_figures()) + control_loop_figures()
    for f in figures:
        print(json.dumps(f))


if __name__ == "__main__":
    if sys.argv[1:2] == ["slaves"]:
        asyncio.run(slaves_main(int(sys.argv[2])))
    else:
        main()
