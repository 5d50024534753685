"""The provisioning system as one service: its audit writer, its subscriptions and the endpoint
providers post their management messages to, started and stopped together; and one
subscription run in the foreground (``openmeg services subscribe``)."""

from __future__ import annotations

import asyncio
import json
import sys

from openmeg.core.audit import AuditLog
from openmeg.core.clock import Clock, WallClock
from openmeg.core.errors import OpenMegError
from openmeg.core.keystore import Keystore
from openmeg.core.site import Site
from openmeg.customer.provisioning import Discover, Provisioning
from openmeg.customer.provisioning_audit import AuditWriter
from openmeg.customer.provisioning_bacnet import BacnetGateway, premises_clients, premises_discovery
from openmeg.customer.provisioning_inbound import ProvisioningEndpoint
from openmeg.customer.provisioning_relay import BasGateway
from openmeg.provider.advert_identity import TlsIdentity
from openmeg.provider.advertisement import Plan


class ProvisioningService:
    """Start with :meth:`start`; :meth:`close` wipes every key from memory and stops."""

    def __init__(
        self,
        *,
        identity: TlsIdentity,
        plan: Plan,
        keystore: Keystore,
        audit: AuditLog,
        clock: Clock,
        discover: Discover,
        gateway: BasGateway,
        host: str = "127.0.0.1",
        port: int = 0,
        window_s: float = 30.0,
        advertiser: str = "",
    ) -> None:
        self.advertiser = advertiser  # host:port of the advertisement server, if configured
        self.writer = AuditWriter(audit)
        self.provisioning = Provisioning(
            identity=identity,
            plan=plan,
            keystore=keystore,
            audit=self.writer,
            clock=clock,
            discover=discover,
            callback="",
            window_s=window_s,
        )
        self.endpoint = ProvisioningEndpoint(self.provisioning, gateway, host=host, port=port)

    async def start(self) -> ProvisioningService:
        """Start the audit writer and listen for providers."""
        self.writer.start()
        await self.endpoint.start()
        self.provisioning.callback = self.endpoint.endpoint
        return self

    async def close(self) -> None:
        """Stop listening, wipe the keys held in memory, write the last audit records."""
        await self.endpoint.close()
        await self.provisioning.close()
        await self.writer.close()


async def run_subscription(
    *,
    site: Site,
    premises: str,
    identity: TlsIdentity,
    plan: Plan,
    keystore: Keystore,
    audit: AuditLog,
    advertiser: str,
    service: str,
    seconds: float,
    mdns: bool = True,
) -> int:
    """Subscribe ``premises`` to ``service`` and relay until ``seconds`` pass (0: until
    cancelled), then unsubscribe; the exit code (0, or 2 with the reason on stderr)."""
    clients = premises_clients(site, premises)
    gateway = BacnetGateway(clients)
    svc = ProvisioningService(
        identity=identity,
        plan=plan,
        keystore=keystore,
        audit=audit,
        clock=WallClock(),
        discover=premises_discovery(site, premises, gateway, mdns=mdns),
        gateway=gateway,
    )
    await svc.start()
    sub = None
    try:
        ads = {a.id: a for a in await svc.provisioning.services(advertiser)}
        for c in clients.values():
            await c.start()
        if service not in ads:
            print(
                f"error: the plan {plan.name} has no service {service!r}: see services list",
                file=sys.stderr,
            )
            return 2
        sub = await svc.provisioning.subscribe(ads[service])
        print(json.dumps(sub.status() | {"relaying_at": svc.endpoint.endpoint}), flush=True)
        await (asyncio.sleep(seconds) if seconds > 0 else asyncio.Event().wait())
        return 0
    except OpenMegError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    finally:
        if sub is not None:
            await asyncio.shield(svc.provisioning.unsubscribe(sub.id))
            print(json.dumps({"unsubscribed": sub.id}), flush=True)
        await svc.close()
        for c in clients.values():
            await c.stop()
