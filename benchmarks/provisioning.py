"""Benchmark: management messages relayed through the provisioning system's encrypted channel
(Y.2071 III.3) over real mutual-TLS sockets on 127.0.0.1, with 1 and with 100 subscriptions,
and the latency the relay adds per message.

Each message is sealed by the example provider (in a process of its own, as on its own
machine), posted over its kept-alive TLS 1.3 connection, opened, checked against the
subscription, converted to the BAS point, written to the simulated building plant and read back,
audited (group commit into the SQLite store; the answer goes once its record is stored), and
answered sealed. The one subscription's throughput is of requests carrying 16 sealed messages
each (an optimiser's run of commands, each message still sealed, checked, relayed and audited on
its own); the 100 subscriptions send one message at a time each. The added latency is of single
messages on the one subscription: the provider's round trip less the time spent in the device."""

from __future__ import annotations

import asyncio
import json
import multiprocessing
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime
from multiprocessing.connection import Connection
from pathlib import Path

from openmeg.core.audit import AuditLog
from openmeg.core.clock import WallClock
from openmeg.core.keystore import KeyEncryptionKey, Keystore
from openmeg.core.keystore_kek import FAST_KDF
from openmeg.core.site import load_site
from openmeg.core.store import Store, sqlite_url
from openmeg.customer.device_discovery import FoundDevice, device_uuid, scan_bas
from openmeg.customer.provisioning_service import ProvisioningService
from openmeg.protocols.provider_ca import ProviderAuthority
from openmeg.provider.advert_http import MtlsServer
from openmeg.provider.advert_identity import TlsIdentity
from openmeg.provider.advertisement import Advertisement, AdvertisementBoard, Plan, ServiceOffer
from openmeg.provider.comfort_optimiser import ComfortOptimiser
from openmeg.sim.physics.building import BuildingPlant

MESSAGES = 3000
BATCH = 16
"""Messages per request in the one subscription's throughput run."""
PASSPHRASE = "a benchmark's passphrase"


class PlantBas:
    """The building plant as the premises' BAS, timed: the device's own share of a message."""

    def __init__(self, plant: BuildingPlant) -> None:
        self.plant, self.busy_s = plant, 0.0

    async def read(self, bas: str, names: list[str]) -> dict[str, float]:
        t0 = time.perf_counter()
        values = self.plant.read()
        out = {n: values[n] for n in names}
        self.busy_s += time.perf_counter() - t0
        return out

    async def write(self, bas: str, name: str, value: float) -> None:
        t0 = time.perf_counter()
        self.plant.command(name, value)
        self.busy_s += time.perf_counter() - t0


def _provider_main(conn: Connection, keystore_path: str, pems: dict[str, bytes], crl: str) -> None:
    """The example provider in a process of its own (as on its own machine)."""
    asyncio.run(_provider(conn, Path(keystore_path), pems, Path(crl)))


async def _provider(
    conn: Connection, keystore_path: Path, pems: dict[str, bytes], crl: Path
) -> None:
    keystore = Keystore.open(keystore_path, KeyEncryptionKey.passphrase(PASSPHRASE, cost=FAST_KDF))
    identity = TlsIdentity(
        name="comfort-optimiser",
        server_cert=pems["server"],
        client_cert=pems["client"],
        trust=pems["trust"],
        crl=crl.read_bytes,
        keystore=keystore,
    )
    provider = ComfortOptimiser(identity)
    await provider.start()
    conn.send(provider.endpoint)
    ahu = device_uuid(serial="HB-AHU-0001")

    async def sender(sid: str, n: int, times: list[float]) -> None:
        """``n`` messages one at a time, each round trip timed."""
        for i in range(n):
            msg = {"id": f"{i}", "device": ahu, "action": "setpoint", "value": 20 + i % 5}
            t0 = time.perf_counter()
            answer = await provider.send(sid, msg)
            times.append(time.perf_counter() - t0)
            assert answer["ok"], answer

    async def batches(sid: str, n: int) -> None:
        """``n`` messages in requests of ``BATCH``, as an optimiser sends one run's commands."""
        for first in range(0, n, BATCH):
            msgs = [
                {"id": f"{i}", "device": ahu, "action": "setpoint", "value": 20 + i % 5}
                for i in range(first, min(n, first + BATCH))
            ]
            answers = await provider.send_many(sid, msgs)
            assert all(a.get("ok") for a in answers), answers

    try:
        while True:
            command, *args = await asyncio.to_thread(conn.recv)
            if command == "register":
                ad = await provider.register(args[0], ServiceOffer.model_validate_json(args[1]))
                conn.send(ad.model_dump_json())
            elif command == "send":
                sids, per = args
                await sender(sids[0], 50, [])  # warm up
                times: list[float] = []
                if len(sids) == 1:  # the latency of single messages, then batched throughput
                    await sender(sids[0], per, times)
                t0 = time.perf_counter()
                if len(sids) == 1:
                    await batches(sids[0], per)
                else:
                    await asyncio.gather(*(sender(sid, per, times) for sid in sids))
                conn.send((time.perf_counter() - t0, times))
            else:
                break
    finally:
        await provider.close()


async def _run(folder: Path, subscriptions: int) -> tuple[float, list[float]]:
    kek = KeyEncryptionKey.passphrase(PASSPHRASE, cost=FAST_KDF)
    keystore = Keystore.open(folder / "k.keystore", kek)
    store = Store(sqlite_url(folder / f"meg-{subscriptions}.db"))
    store.create_schema()
    audit = AuditLog(store, keystore.secret("audit/hmac"))
    ca = ProviderAuthority.create(f"bench-{subscriptions}", keystore, folder / "ca", force=True)
    premises = TlsIdentity.issue(ca, "premises", keystore)
    provider_id = TlsIdentity.issue(ca, "comfort-optimiser", keystore)
    advertiser_id = TlsIdentity.issue(ca, "advertiser", keystore)
    bas = next(b for b in load_site("demo").bas if b.id == "bas-office")
    plant = BuildingPlant(bas, timezone="Europe/Rome")
    plant.step(datetime(2026, 7, 1, 12, 0, tzinfo=UTC), 900.0, 30.0)
    device = PlantBas(plant)

    async def discover() -> list[FoundDevice]:
        return await scan_bas([bas], device.read)

    board = AdvertisementBoard(
        audit, WallClock().now, trusted=lambda fp: fp == provider_id.client_fingerprint
    )
    advertiser = MtlsServer(
        board.routes(), advertiser_id.server_context, on_refused=board.tls_refused
    )
    plan = Plan(name="b", device_kinds=("ahu",), actions=("setpoint",), max_price_per_month=10)
    service = ProvisioningService(
        identity=premises,
        plan=plan,
        keystore=keystore,
        audit=audit,
        clock=WallClock(),
        discover=discover,
        gateway=device,
    )
    ours, theirs = multiprocessing.Pipe()
    pems = {
        "server": provider_id.server_cert,
        "client": provider_id.client_cert,
        "trust": provider_id.trust,
    }
    child = multiprocessing.get_context("spawn").Process(
        target=_provider_main, args=(theirs, str(keystore.path), pems, str(ca.crl_path))
    )
    child.start()
    await advertiser.start()
    await service.start()
    try:
        endpoint = await asyncio.to_thread(ours.recv)
        offer = ServiceOffer(
            id="comfort",
            name="Comfort",
            description="pre-cooling",
            device_kinds=("ahu",),
            actions=("setpoint",),
            price_per_month=5.0,
            endpoint=endpoint,
        )
        ours.send(("register", f"127.0.0.1:{advertiser.port}", offer.model_dump_json()))
        ad = Advertisement.model_validate_json(await asyncio.to_thread(ours.recv))
        subs = [await service.provisioning.subscribe(ad) for _ in range(subscriptions)]
        per = MESSAGES // subscriptions
        ours.send(("send", [s.id for s in subs], per))
        busy0 = device.busy_s
        elapsed, times = await asyncio.to_thread(ours.recv)
        relayed = 50 + len(times) + (per if subscriptions == 1 else 0)
        device_s = (device.busy_s - busy0) / relayed  # the device's share of each message
        for s in subs:
            await service.provisioning.unsubscribe(s.id)
        assert audit.verify() == []
        return per * subscriptions / elapsed, [(t - device_s) * 1000 for t in times]
    finally:
        ours.send(("stop",))
        await asyncio.to_thread(child.join, 30)
        await service.close()
        await advertiser.close()
        store.close()


def _quantile(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[round(q * 100) - 1]


def main() -> None:
    with tempfile.TemporaryDirectory() as d:
        rate1, latencies = asyncio.run(_run(Path(d), 1))  # latencies: the one subscription's
        rate100, _ = asyncio.run(_run(Path(d), 100))
    lines = [
        ("provisioning_messages_per_s", round(rate1), "messages/s", ">=2000"),
        ("provisioning_100_messages_per_s", round(rate100), "messages/s", ">=2000"),
        ("provisioning_added_p50_ms", round(statistics.median(latencies), 3), "ms", "<10"),
        ("provisioning_added_p99_ms", round(_quantile(latencies, 0.99), 3), "ms", "<10"),
    ]
    for metric, value, unit, target in lines:
        print(json.dumps({"metric": metric, "value": value, "unit": unit, "target": target}))
    sys.stdout.flush()


if __name__ == "__main__":
    main()
