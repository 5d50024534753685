"""The customer energy management service provisioning system (Y.2071 10.1, III.3): it lists
the advertised services the premises' plan allows, subscribes to one (mutual TLS 1.3 with the
provider, an X25519 key agreed for the subscription, sealed in the keystore and held in secure
memory), sends the provider the encrypted list of the premises' devices, relays the provider's
encrypted management messages (``customer.provisioning_inbound``) and unsubscribes (the key
deleted from the keystore and wiped from memory). Every step, relay and refusal is audited."""

from __future__ import annotations

import base64
import json
import logging
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from pydantic import TypeAdapter, ValidationError

from openmeg.core.clock import Clock
from openmeg.core.errors import CommandError, OpenMegError
from openmeg.core.keystore import Keystore
from openmeg.core.secure_channel import Channel, ChannelError, agree_key, new_agreement_key
from openmeg.core.secure_memory import SecretBytes
from openmeg.customer.device_discovery import FoundDevice
from openmeg.customer.provisioning_audit import AuditWriter
from openmeg.customer.provisioning_relay import ACTION_POINTS
from openmeg.provider.advert_http import HttpError, MtlsClient
from openmeg.provider.advert_identity import TlsIdentity
from openmeg.provider.advertisement import Advertisement, Plan, allowed

ADS = TypeAdapter(list[Advertisement])
Discover = Callable[[], Awaitable[list[FoundDevice]]]
log = logging.getLogger("openmeg.provisioning")


def key_name(subscription: str) -> str:
    """The keystore name of a subscription's message key."""
    return f"provisioning/{subscription}/message-key"


def held_subscriptions(keystore: Keystore) -> list[str]:
    """The subscriptions whose message keys ``keystore`` holds."""
    return sorted(
        n.split("/")[1]
        for n in keystore.names()
        if n.startswith("provisioning/sub-") and n.endswith("/message-key")
    )


async def list_services(identity: TlsIdentity, advertiser: str, plan: Plan) -> list[Advertisement]:
    """The services advertised at ``advertiser`` (host:port) that ``plan`` allows."""
    client = MtlsClient(*_host_port(advertiser), identity.client_context())
    try:
        status, body = await client.request("GET", "/services")
    finally:
        await client.close()
    if status != 200:
        raise HttpError(f"the advertisement server answered {status}: {body}", status=status)
    try:
        ads = ADS.validate_json(json.dumps(body))
    except ValidationError as err:
        raise HttpError(f"the advertisement server sent no service list: {err}") from err
    return allowed(ads, plan)


@dataclass(kw_only=True)
class Subscription:
    """One live subscription: its service, the devices given to it and what it may do."""

    id: str
    service: Advertisement
    provider_fingerprint: str
    devices: dict[str, FoundDevice]
    allowed: dict[str, frozenset[str]]
    key: SecretBytes
    channel: Channel

    def status(self) -> dict[str, object]:
        """What ``openmeg services status`` shows of it (never its key)."""
        return {
            "subscription": self.id,
            "service": self.service.id,
            "provider": self.service.provider,
            "provider_fingerprint": self.provider_fingerprint,
            "devices": len(self.devices),
            "open": not self.channel.closed,
        }


def _host_port(endpoint: str) -> tuple[str, int]:
    host, _, port = endpoint.rpartition(":")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise HttpError(f"{endpoint!r} is not HOST:PORT")
    return host, int(port)


def actions_for(device: FoundDevice, service: Advertisement, plan: Plan) -> frozenset[str]:
    """The actions a subscription to ``service`` under ``plan`` may do to ``device``."""
    if device.kind not in service.device_kinds or device.kind not in plan.device_kinds:
        return frozenset()
    can = {"read"} | {a for k, a in ACTION_POINTS if k == device.kind and device.bas}
    return frozenset(can & set(service.actions) & set(plan.actions))


class Provisioning:
    """The premises' side of III.3 (its inbound endpoint: ``ProvisioningEndpoint``)."""

    def __init__(
        self,
        *,
        identity: TlsIdentity,
        plan: Plan,
        keystore: Keystore,
        audit: AuditWriter,
        clock: Clock,
        discover: Discover,
        callback: str,
        window_s: float = 30.0,
    ) -> None:
        self.identity, self.plan, self.keystore = identity, plan, keystore
        self.audit, self.clock, self.discover = audit, clock, discover
        self.callback, self.window_s = callback, window_s
        self.subscriptions: dict[str, Subscription] = {}

    async def _audit(self, action: str, target: str, **detail: object) -> None:
        log.info("%s %s %s", action.removeprefix("provisioning."), target, detail)
        await self.audit.record(
            ts=self.clock.now(), actor="provisioning", action=action, target=target, detail=detail
        )

    async def services(self, advertiser: str) -> list[Advertisement]:
        """The services advertised at ``advertiser`` (host:port) that the plan allows."""
        return await list_services(self.identity, advertiser, self.plan)

    async def subscribe(self, service: Advertisement) -> Subscription:
        """Subscribe to ``service``: mutual TLS, key agreement, discovery, the device list."""
        if not self.plan.allows(service):
            await self._audit("provisioning.refused", service.id, reason="not in the plan")
            raise CommandError(f"the plan {self.plan.name} does not allow {service.id}")
        sid = f"sub-{secrets.token_hex(8)}"
        client = MtlsClient(*_host_port(service.endpoint), self.identity.client_context())
        try:
            return await self._subscribe(sid, service, client)
        except (OpenMegError, ValueError, KeyError, TypeError) as err:
            await self._audit("provisioning.refused", service.id, subscription=sid, reason=str(err))
            self._forget(sid)
            raise
        finally:
            await client.close()

    async def _subscribe(
        self, sid: str, service: Advertisement, client: MtlsClient
    ) -> Subscription:
        private, public = new_agreement_key()
        await client.connect()
        if client.peer_name != service.provider:
            raise HttpError(f"the server is {client.peer_name!r}, not {service.provider!r}")
        status, body = await client.request(
            "POST",
            "/subscribe",
            {
                "subscription": sid,
                "service": service.id,
                "public": base64.b64encode(public).decode(),
                "callback": self.callback,
            },
        )
        if status != 200:
            raise HttpError(f"the provider refused the subscription: {body}", status=status)
        key = agree_key(
            private,
            base64.b64decode(body["public"], validate=True),
            premises_fingerprint=self.identity.client_fingerprint,
            provider_fingerprint=client.peer_fingerprint,
            subscription=sid,
        )
        self.keystore.put(key_name(sid), key.view().tobytes())
        channel = Channel(
            key,
            sender="premises",
            receiver="provider",
            window_s=self.window_s,
            clock=lambda: self.clock.now().timestamp(),
        )
        sub = Subscription(
            id=sid,
            service=service,
            provider_fingerprint=client.peer_fingerprint,
            devices={},
            allowed={},
            key=key,
            channel=channel,
        )
        self.subscriptions[sid] = sub
        for d in await self.discover():
            can = actions_for(d, service, self.plan)
            if can:
                sub.devices[d.id], sub.allowed[d.id] = d, can
        listing = [
            d.public() | {"actions": sorted(sub.allowed[d.id])} for d in sub.devices.values()
        ]
        sealed = channel.seal(json.dumps({"subscription": sid, "devices": listing}).encode())
        status, body = await client.request(
            "POST", "/devices", {"subscription": sid, "sealed": base64.b64encode(sealed).decode()}
        )
        if status != 200:
            raise HttpError(f"the provider refused the device list: {body}", status=status)
        await self._audit(
            "provisioning.subscribed",
            sid,
            service=service.id,
            provider=service.provider,
            provider_fingerprint=client.peer_fingerprint,
            devices=sorted(sub.devices),
        )
        return sub

    def _forget(self, sid: str) -> None:
        sub = self.subscriptions.pop(sid, None)
        if sub is not None:
            sub.channel.close()
            sub.key.wipe()
        self.keystore.delete(key_name(sid))

    async def unsubscribe(self, sid: str) -> None:
        """End ``sid``: tell the provider, delete its key from the keystore, wipe it."""
        sub = self.subscriptions.get(sid)
        if sub is None:
            raise CommandError(f"no subscription {sid}: see openmeg services status")
        told = True
        client = MtlsClient(*_host_port(sub.service.endpoint), self.identity.client_context())
        try:
            status, _ = await client.request("POST", "/unsubscribe", {"subscription": sid})
            told = status == 200
        except HttpError:
            told = False
        finally:
            await client.close()
        self._forget(sid)
        await self._audit("provisioning.unsubscribed", sid, provider_told=told)

    def status(self) -> list[dict[str, object]]:
        """Every live subscription's status."""
        return [s.status() for s in self.subscriptions.values()]

    async def close(self) -> None:
        """Wipe every subscription's key from memory (they stay sealed in the keystore)."""
        for sub in self.subscriptions.values():
            sub.channel.close()


__all__ = ["ChannelError", "Provisioning", "Subscription", "actions_for", "key_name"]
