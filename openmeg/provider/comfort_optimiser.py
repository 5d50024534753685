"""The example third-party provider server, a "comfort and cost optimiser" (Y.2071 III.3): over
mutual TLS 1.3 it takes subscriptions (X25519 key agreement bound to both certificates), receives
the premises' encrypted device list, and sends encrypted management messages back: pre-cool
before a price peak (lower an air handler's space setpoint, a heat pump's water setpoint) and
dim the lighting of empty zones; it reads the encrypted answers."""

from __future__ import annotations

import base64
import binascii
import json
import secrets
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from openmeg.core.secure_channel import Channel, ChannelError, agree_key, new_agreement_key
from openmeg.provider.advert_http import HttpError, MtlsClient, MtlsServer, Request
from openmeg.provider.advert_identity import TlsIdentity
from openmeg.provider.advertisement import Advertisement, ServiceOffer


def peak_ahead(prices_per_kwh: Sequence[float], *, hours: int = 2, ratio: float = 1.5) -> bool:
    """True if a price in the next ``hours`` intervals (after the first, now) is at least
    ``ratio`` times the price now: the time to pre-cool."""
    if len(prices_per_kwh) < 2 or prices_per_kwh[0] <= 0:
        return False
    return max(prices_per_kwh[1 : hours + 1]) >= ratio * prices_per_kwh[0]


@dataclass(kw_only=True)
class Subscriber:
    """A premises subscribed to the service."""

    id: str
    premises: str
    premises_fingerprint: str
    callback: str
    channel: Channel
    devices: list[dict[str, Any]] = field(default_factory=list)
    client: MtlsClient | None = None


class ComfortOptimiser:
    """The provider's server and its management messages to each subscriber."""

    def __init__(
        self,
        identity: TlsIdentity,
        *,
        clock: Callable[[], float] = time.time,
        window_s: float = 30.0,
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        self.identity, self.clock, self.window_s = identity, clock, window_s
        self.subscribers: dict[str, Subscriber] = {}
        self.refusals: list[str] = []
        routes = {
            ("POST", "/subscribe"): self._subscribe,
            ("POST", "/devices"): self._devices,
            ("POST", "/unsubscribe"): self._unsubscribe,
        }
        self.server = MtlsServer(
            routes, identity.server_context, on_refused=self._refused, host=host, port=port
        )

    @property
    def endpoint(self) -> str:
        return f"{self.server.host}:{self.server.port}"

    async def start(self) -> None:
        await self.server.start()

    async def close(self) -> None:
        await self.server.close()
        for s in self.subscribers.values():
            await self._drop(s)
        self.subscribers.clear()

    async def _refused(self, peer: str, reason: str) -> None:
        self.refusals.append(f"{peer}: {reason}")

    async def register(self, advertiser: str, offer: ServiceOffer) -> Advertisement:
        """Register ``offer`` with the advertisement server at ``advertiser`` (host:port)."""
        host, _, port = advertiser.rpartition(":")
        client = MtlsClient(host, int(port), self.identity.client_context())
        try:
            status, body = await client.request("POST", "/services", offer.model_dump(mode="json"))
        finally:
            await client.close()
        if status != 200:
            raise HttpError(f"the advertisement server refused the service: {body}", status=status)
        return Advertisement.model_validate_json(json.dumps(body))

    async def _subscribe(self, req: Request) -> tuple[int, Any]:
        body = req.json()
        try:
            sid, callback = str(body["subscription"]), str(body["callback"])
            peer_public = base64.b64decode(str(body["public"]), validate=True)
        except (KeyError, TypeError, binascii.Error) as err:
            raise HttpError(f"a subscription is {{subscription, public, callback}}: {err}") from err
        if sid in self.subscribers:
            raise HttpError(f"the subscription {sid} exists", status=409)
        private, public = new_agreement_key()
        try:
            key = agree_key(
                private,
                peer_public,
                premises_fingerprint=req.peer_fingerprint,
                provider_fingerprint=self.identity.server_fingerprint,
                subscription=sid,
            )
        except ChannelError as err:
            raise HttpError(str(err)) from err
        channel = Channel(
            key, sender="provider", receiver="premises", window_s=self.window_s, clock=self.clock
        )
        self.subscribers[sid] = Subscriber(
            id=sid,
            premises=req.peer_name,
            premises_fingerprint=req.peer_fingerprint,
            callback=callback,
            channel=channel,
        )
        return 200, {"public": base64.b64encode(public).decode()}

    def _own(self, req: Request) -> Subscriber:
        body = req.json()
        sub = (
            self.subscribers.get(str(body.get("subscription"))) if isinstance(body, dict) else None
        )
        if sub is None or sub.premises_fingerprint != req.peer_fingerprint:
            raise HttpError("no such subscription of this certificate", status=404)
        return sub

    async def _devices(self, req: Request) -> tuple[int, Any]:
        sub = self._own(req)
        try:
            sealed = base64.b64decode(str(req.json()["sealed"]), validate=True)
            listing = json.loads(sub.channel.open(sealed))
        except ChannelError as err:
            raise HttpError(f"the device list is refused: {err.reason}") from err
        except (KeyError, binascii.Error, ValueError) as err:
            raise HttpError("the device list is {subscription, sealed}") from err
        sub.devices = list(listing["devices"])
        return 200, {"devices": len(sub.devices)}

    async def _drop(self, sub: Subscriber) -> None:
        sub.channel.close()
        if sub.client is not None:
            await sub.client.close()

    async def _unsubscribe(self, req: Request) -> tuple[int, Any]:
        sub = self._own(req)
        await self._drop(self.subscribers.pop(sub.id))
        return 200, {"unsubscribed": sub.id}

    async def send(self, sid: str, message: dict[str, Any]) -> dict[str, Any]:
        """Seal ``message``, post it to the subscriber and open its sealed answer;
        ``HttpError`` with the refusal if the premises refused it."""
        return await self.send_sealed(
            sid, self.subscribers[sid].channel.seal(json.dumps(message).encode())
        )

    async def send_sealed(self, sid: str, sealed: bytes) -> dict[str, Any]:
        """Post a sealed message as it is (a test can change or replay one) and open the answer."""
        sub = self.subscribers[sid]
        payload = {"subscription": sid, "sealed": base64.b64encode(sealed).decode()}
        status, body = await self._client(sub).request("POST", "/messages", payload)
        if status != 200:
            raise HttpError(f"the premises refused the message: {body}", status=status)
        answer: dict[str, Any] = json.loads(sub.channel.open(base64.b64decode(body["sealed"])))
        return answer

    def _client(self, sub: Subscriber) -> MtlsClient:
        if sub.client is None:
            host, _, port = sub.callback.rpartition(":")
            sub.client = MtlsClient(host, int(port), self.identity.client_context())
        return sub.client

    async def send_many(self, sid: str, messages: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
        """Seal ``messages`` in order and post them in one request; their answers in order
        (``{"refused": reason}`` for one the premises refused)."""
        sub = self.subscribers[sid]
        sealed = [sub.channel.seal(json.dumps(m).encode()) for m in messages]
        payload = {"subscription": sid, "sealed": [base64.b64encode(s).decode() for s in sealed]}
        status, body = await self._client(sub).request("POST", "/messages", payload)
        if status != 200:
            raise HttpError(f"the premises refused the messages: {body}", status=status)
        return [
            json.loads(sub.channel.open(base64.b64decode(a["sealed"]))) if "sealed" in a else a
            for a in body["answers"]
        ]

    def _of_kind(self, sid: str, kind: str) -> list[dict[str, Any]]:
        return [d for d in self.subscribers[sid].devices if d["kind"] == kind]

    async def pre_cool(
        self, sid: str, *, space_c: float = 20.0, water_c: float = 7.0
    ) -> list[dict[str, Any]]:
        """Lower every air handler's space setpoint and heat pump's water setpoint."""
        messages = [
            {"id": _id(), "device": d["id"], "action": "setpoint", "value": value}
            for kind, value in (("ahu", space_c), ("heat_pump", water_c))
            for d in self._of_kind(sid, kind)
            if "setpoint" in d["actions"]
        ]
        return await self.send_many(sid, messages) if messages else []

    async def dim_empty(self, sid: str, *, level_pct: float = 10.0) -> list[dict[str, Any]]:
        """Read each lighting zone; dim those nobody occupies and whose lights are brighter."""
        answers = []
        for d in self._of_kind(sid, "lighting_zone"):
            if not {"read", "level"} <= set(d["actions"]):
                continue
            read = await self.send(sid, {"id": _id(), "device": d["id"], "action": "read"})
            values = read.get("values", {})
            occupied = next((v for k, v in values.items() if k.endswith(".occupied")), 1.0)
            level = next((v for k, v in values.items() if k.endswith(".level_pct")), 0.0)
            if occupied == 0 and level > level_pct:
                msg = {"id": _id(), "device": d["id"], "action": "level", "value": level_pct}
                answers.append(await self.send(sid, msg))
        return answers

    async def optimise(self, sid: str, prices_per_kwh: Sequence[float]) -> list[dict[str, Any]]:
        """Pre-cool if a price peak is ahead, and dim empty zones; the answers."""
        answers = await self.pre_cool(sid) if peak_ahead(prices_per_kwh) else []
        return answers + await self.dim_empty(sid)


def _id() -> str:
    return secrets.token_hex(8)
