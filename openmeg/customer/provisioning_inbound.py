"""The provisioning system's endpoint for providers' management messages (Y.2071 III.3 step 5):
a provider connects with its client certificate (mutual TLS 1.3, CRL checked) and posts a sealed
message; it is opened on the subscription's channel, checked against what the subscription
allows, converted to the device's BAS point, relayed, and answered sealed. A refused handshake,
message or action is audited and answered, and the endpoint keeps running."""

from __future__ import annotations

import asyncio
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
MAX_BATCH = 64
"""The most sealed messages one request carries."""


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

    def _subscription(self, req: Request, body: Any) -> tuple[Subscription, list[bytes], bool]:
        if not isinstance(body, dict) or set(body) != {"subscription", "sealed"}:
            raise HttpError("a message is {subscription, sealed}", status=400)
        sub = self.p.subscriptions.get(str(body["subscription"]))
        if sub is None:
            raise HttpError("no such subscription", status=404)
        if req.peer_fingerprint != sub.service.provider_fingerprint:
            raise HttpError("this certificate is not the subscription's provider", status=403)
        many = isinstance(body["sealed"], list)
        texts = body["sealed"] if many else [body["sealed"]]
        if not 1 <= len(texts) <= MAX_BATCH or not all(isinstance(t, str) for t in texts):
            raise HttpError(f"sealed is one message or a list of 1 to {MAX_BATCH}", status=400)
        try:
            return sub, [base64.b64decode(t, validate=True) for t in texts], many
        except binascii.Error as err:
            raise HttpError("sealed is not base64", status=400) from err

    async def message(self, req: Request) -> tuple[int, Any]:
        """Open, check, relay and answer one sealed management message, or a list of them in
        the order they were sealed (each answered as it would be alone)."""
        try:
            sub, messages, many = self._subscription(req, req.json())
        except HttpError as err:
            await self._refuse(req, "message", str(err))
            raise
        stored: list[asyncio.Future[None]] = []
        answers = [await self._answer(req, sub, sealed, stored) for sealed in messages]
        await asyncio.gather(*stored)  # every relay's record stored before any answer goes
        if many:
            return 200, {"answers": answers}
        return (400 if "refused" in answers[0] else 200), answers[0]

    async def _answer(
        self, req: Request, sub: Subscription, sealed: bytes, stored: list[asyncio.Future[None]]
    ) -> dict[str, str]:
        try:
            plain = sub.channel.open(sealed)
        except ChannelError as err:
            await self._refuse(req, sub.id, err.reason, message=str(err))
            return {"refused": err.reason}
        answer = await self._relay(req, sub, plain, stored)
        return {"sealed": base64.b64encode(sub.channel.seal(answer)).decode()}

    async def _relay(
        self, req: Request, sub: Subscription, plain: bytes, stored: list[asyncio.Future[None]]
    ) -> bytes:
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
        recorded = self.p.audit.submit(
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
        stored.append(recorded)
        return json.dumps({"id": msg.id, "ok": True, "values": values}).encode()
