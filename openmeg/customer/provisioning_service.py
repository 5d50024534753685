"""The provisioning system as one service: its audit writer, its subscriptions and the endpoint
providers post their management messages to, started and stopped together."""

from __future__ import annotations

from openmeg.core.audit import AuditLog
from openmeg.core.clock import Clock
from openmeg.core.keystore import Keystore
from openmeg.customer.provisioning import Discover, Provisioning
from openmeg.customer.provisioning_audit import AuditWriter
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
    ) -> None:
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
