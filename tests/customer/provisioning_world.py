"""A premises, an advertisement server and the example provider on 127.0.0.1, for the
provisioning tests: one provider CA, certificates for each party, a store and a keystore."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

from openmeg.core.audit import AuditLog
from openmeg.core.clock import WallClock
from openmeg.core.keystore import Keystore
from openmeg.core.store import Store, sqlite_url
from openmeg.customer.device_discovery import FoundDevice
from openmeg.customer.provisioning_relay import BasGateway
from openmeg.customer.provisioning_service import ProvisioningService
from openmeg.protocols.provider_ca import ProviderAuthority
from openmeg.provider.advert_http import MtlsServer
from openmeg.provider.advert_identity import TlsIdentity
from openmeg.provider.advertisement import AdvertisementBoard, Plan, ServiceOffer
from openmeg.provider.comfort_optimiser import ComfortOptimiser
from tests.keys import test_keystore

PLAN = Plan(
    name="comfort",
    device_kinds=("ahu", "heat_pump", "lighting_zone"),
    actions=("read", "setpoint", "level", "scene"),
    max_price_per_month=50.0,
)


def offer(endpoint: str, **changes: object) -> ServiceOffer:
    """The comfort and cost optimiser's offer."""
    fields: dict[str, object] = {
        "id": "comfort-optimiser",
        "name": "Comfort and cost optimiser",
        "description": "Pre-cools before price peaks and dims lighting in empty zones",
        "device_kinds": ("ahu", "heat_pump", "lighting_zone"),
        "actions": ("read", "setpoint", "level"),
        "price_per_month": 19.0,
        "endpoint": endpoint,
    }
    return ServiceOffer.model_validate(fields | changes)


@dataclass(kw_only=True)
class World:
    """Every party of one III.3 flow."""

    folder: Path
    keystore: Keystore
    store: Store
    audit: AuditLog
    authority: ProviderAuthority
    premises: TlsIdentity
    provider_identity: TlsIdentity
    board: AdvertisementBoard
    advertiser: MtlsServer
    provider: ComfortOptimiser
    service: ProvisioningService

    @property
    def advertiser_at(self) -> str:
        return f"127.0.0.1:{self.advertiser.port}"

    def actions(self) -> list[tuple[str, str, str]]:
        """The audit log's (actor, action, target) in order."""
        return [(r.actor, r.action, r.target) for r in self.audit.records()]

    def reasons(self, action: str) -> list[str]:
        return [str(r.detail.get("reason")) for r in self.audit.records() if r.action == action]


@asynccontextmanager
async def world(
    folder: Path,
    gateway: BasGateway,
    discover: Callable[[], Awaitable[list[FoundDevice]]],
    *,
    provider_clock: Callable[[], float] = time.time,
) -> AsyncIterator[World]:
    """Everything started; everything closed after."""
    keystore = test_keystore(folder / "site.keystore")
    store = Store(sqlite_url(folder / "meg.db"))
    store.create_schema()
    audit = AuditLog(store, keystore.secret("audit/hmac"))
    authority = ProviderAuthority.create("providers", keystore, folder / "ca")
    premises = TlsIdentity.issue(authority, "premises-office", keystore)
    provider_identity = TlsIdentity.issue(authority, "comfort-optimiser", keystore)
    advertiser_identity = TlsIdentity.issue(authority, "advertiser", keystore)
    clock = WallClock()
    board = AdvertisementBoard(
        audit, clock.now, trusted=lambda fp: fp == provider_identity.client_fingerprint
    )
    advertiser = MtlsServer(
        board.routes(), advertiser_identity.server_context, on_refused=board.tls_refused
    )
    provider = ComfortOptimiser(provider_identity, clock=provider_clock)
    service = ProvisioningService(
        identity=premises,
        plan=PLAN,
        keystore=keystore,
        audit=audit,
        clock=clock,
        discover=discover,
        gateway=gateway,
    )
    await advertiser.start()
    await provider.start()
    await service.start()
    try:
        yield World(
            folder=folder,
            keystore=keystore,
            store=store,
            audit=audit,
            authority=authority,
            premises=premises,
            provider_identity=provider_identity,
            board=board,
            advertiser=advertiser,
            provider=provider,
            service=service,
        )
    finally:
        await service.close()
        await provider.close()
        await advertiser.close()
        store.close()
