"""The provisioning system's endpoint for providers' management messages (Y.2071 III.3 step 5):
a provider connects with its client certificate (mutual TLS 1.3, CRL checked) and posts a sealed
message; it is opened on the subscription's channel, checked against what the subscription
allows, converted to the device's BAS point, relayed, and answered sealed. A refused handshake,
message or action is audited and answered, and the endpoint keeps running."""

from __future__ import annotations

import base64
import binascii
import json
import logging
from typing import Any

from openmeg.core.errors import CommandError, DeviceError
from openmeg.core.secure_channel import ChannelError
from openmeg.customer.provisioning import Provisioning, Subscription
from openmeg.customer.provisioning_relay import BasGateway, parse, plan, relay
from openmeg.provider.advert_http import HttpError, MtlsServer, Request

log = logging.getLogger("openmeg.provisioning")


class ProvisioningEndpoint:
    """``POST /messages`` on ``host:port`` for the subscriptions of ``provisioning``."""

    def __init__(
        self,
        provisioning: Provisioning,
        gateway: BasGateway,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        self.p, self.gateway = provisioning, gateway
        self.server = MtlsServer(
            {("POST", "/messages"): self.message},
            provisioning.identity.server_context,
            on_refused=self._tls_refused,
            host=host,
            port=port,
        )

    @property
    def endpoint(self) -> str:
        """``host:port`` providers post to (after ``start``)."""
        return f"{self.server.host}:{self.server.port}"

    async def start(self) -> None:
        await self.server.start()

    async def close(self) -> None:
        await self.server.close()

    async def _tls_refused(self, peer: str, reason: str) -> None:
        log.warning("refused a TLS connection from %s: %s", peer, reason)
        await self.p.audit.record(
            ts=self.p.clock.now(),
            actor=peer,
            action="provisioning.refused",
            target="tls",
            detail={"reason": reason},
        )

    async def _refuse(self, req: Request, target: str, reason: str, **detail: object) -> None:
        log.warning("refused %s from %s: %s %s", target, req.peer_name, reason, detail)
        await self.p.audit.record(
            ts=self.p.clock.now(),
            actor=req.peer_name or req.peer_fingerprint,
            action="provisioning.refused",
            target=target,
            detail={"reason": reason, "fingerprint": req.peer_fingerprint, **detail},
        )

    def _subscription(self, req: Request, body: Any) -> tuple[Subscription, bytes]:
        if not isinstance(body, dict) or set(body) != {"subscription", "sealed"}:
            raise HttpError("a message is {subscription, sealed}", status=400)
        sub = self.p.subscriptions.get(str(body["subscription"]))
        if sub is None:
            raise HttpError("no such subscription", status=404)
        if req.peer_fingerprint != sub.service.provider_fingerprint:
            raise HttpError("this certificate is not the subscription's provider", status=403)
        try:
            return sub, base64.b64decode(str(body["sealed"]), validate=True)
        except binascii.Error as err:
            raise HttpError("sealed is not base64", status=400) from err

    async def message(self, req: Request) -> tuple[int, Any]:
        """Open, check, relay and answer one sealed management message."""
        try:
            sub, sealed = self._subscription(req, req.json())
        except HttpError as err:
            await self._refuse(req, "message", str(err))
            raise
        try:
            plain = sub.channel.open(sealed)
        except ChannelError as err:
            await self._refuse(req, sub.id, err.reason, message=str(err))
            return 400, {"refused": err.reason}
        answer = await self._relay(req, sub, plain)
        return 200, {"sealed": base64.b64encode(sub.channel.seal(answer)).decode()}

    async def _relay(self, req: Request, sub: Subscription, plain: bytes) -> bytes:
        msg_id = ""
        try:
            msg = parse(plain)
            msg_id = msg.id
            r = plan(msg, sub.devices, sub.allowed)
        except CommandError as err:
            await self._refuse(req, sub.id, "not allowed", message=str(err), id=msg_id)
            return json.dumps({"id": msg_id, "ok": False, "refused": str(err)}).encode()
        try:
            values = await relay(self.gateway, r)
        except (DeviceError, CommandError) as err:
            await self._refuse(req, r.device.id, "device", message=str(err), id=msg.id)
            return json.dumps({"id": msg.id, "ok": False, "error": str(err)}).encode()
        self.p.audit.submit(  # in the next group commit; the answer does not wait for it
            ts=self.p.clock.now(),
            actor=req.peer_name,
            action="provisioning.relayed",
            target=r.device.id,
            detail={
                "subscription": sub.id,
                "id": msg.id,
                "action": msg.action,
                "point": r.name or "read",
                "value": r.value if r.name else None,
            },
        )
        return json.dumps({"id": msg.id, "ok": True, "values": values}).encode()
