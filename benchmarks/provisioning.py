"""Benchmark: management messages relayed through the provisioning system's encrypted channel
(Y.2071 III.3) over real mutual-TLS sockets on 127.0.0.1, with 1 and with 100 subscriptions,
and the latency the relay adds per message.

Each message is sealed by the example provider, posted over its kept-alive TLS 1.3 connection,
opened, checked against the subscription, converted to the BAS point, written to the simulated
building plant and read back, audited (group commit into the SQLite store), and answered sealed.
The added latency is the provider's round trip less the time spent in the device itself."""

from __future__ import annotations

import asyncio
import json
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from openmeg.core.audit import AuditLog
from openmeg.core.clock import WallClock
from openmeg.core.keystore import KeyEncryptionKey, Keystore
from openmeg.core.keystore_kek import FAST_KDF
from openmeg.core.site import load_site
from openmeg.core.store import Store, sqlite_url
from openmeg.customer.device_discovery import FoundDevice, device_uuid, scan_bas
from openmeg.customer.provisioning_service import ProvisioningService
from openmeg.protocols.mtls import ProviderAuthority
from openmeg.provider.advert_http import MtlsServer
from openmeg.provider.advert_identity import TlsIdentity
from openmeg.provider.advertisement import AdvertisementBoard, Plan, ServiceOffer
from openmeg.provider.comfort_optimiser import ComfortOptimiser
from openmeg.sim.physics.building import BuildingPlant

MESSAGES = 3000


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


async def _run(folder: Path, subscriptions: int) -> tuple[float, list[float]]:
    keystore = Keystore.open(
        folder / "k.keystore", KeyEncryptionKey.passphrase("bench", cost=FAST_KDF)
    )
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
    provider = ComfortOptimiser(provider_id)
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
    await advertiser.start()
    await provider.start()
    await service.start()
    try:
        offer = ServiceOffer(
            id="comfort",
            name="Comfort",
            description="pre-cooling",
            device_kinds=("ahu",),
            actions=("setpoint",),
            price_per_month=5.0,
            endpoint=provider.endpoint,
        )
        ad = await provider.register(f"127.0.0.1:{advertiser.port}", offer)
        subs = [await service.provisioning.subscribe(ad) for _ in range(subscriptions)]
        ahu = device_uuid(serial="HB-AHU-0001")
        latencies: list[float] = []

        async def sender(sid: str, n: int) -> None:
            for i in range(n):
                msg = {"id": f"{i}", "device": ahu, "action": "setpoint", "value": 20 + i % 5}
                busy0 = device.busy_s
                t0 = time.perf_counter()
                answer = await provider.send(sid, msg)
                took = time.perf_counter() - t0
                assert answer["ok"], answer
                if subscriptions == 1:
                    latencies.append((took - (device.busy_s - busy0)) * 1000)

        await sender(subs[0].id, 50)  # warm up
        latencies.clear()
        per = MESSAGES // subscriptions
        t0 = time.perf_counter()
        await asyncio.gather(*(sender(s.id, per) for s in subs))
        rate = per * subscriptions / (time.perf_counter() - t0)
        for s in subs:
            await service.provisioning.unsubscribe(s.id)
        assert audit.verify() == []
        return rate, latencies
    finally:
        await service.close()
        await provider.close()
        await advertiser.close()
        store.close()


def _quantile(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[round(q * 100) - 1]


def main() -> None:
    with tempfile.TemporaryDirectory() as d:
        rate1, latencies = asyncio.run(_run(Path(d), 1))
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
