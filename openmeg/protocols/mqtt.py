"""The bus over a real MQTT broker (aiomqtt); messages are the same versioned JSON. A client
logs in with its component's user name and password, over TLS verified against the site CA."""

from __future__ import annotations

import asyncio
import contextlib
import logging

import aiomqtt
from pydantic import ValidationError

from openmeg.core.bus import Subscription, check_filter, topic_matches
from openmeg.core.errors import BusError
from openmeg.core.messages import BusMessage, decode, encode
from openmeg.protocols.broker_access import Login, refusal, tls_context

log = logging.getLogger(__name__)


class MqttBus:
    """Publish and subscribe through an MQTT broker at ``host:port`` with QoS 1, logged in as
    ``login`` (user name, password; TLS when it names a CA file).

    A message that does not decode is counted in ``rejected`` and reported, never delivered;
    nothing a message contains stops the reader.
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 1883,
        *,
        client_id: str = "",
        login: Login | None = None,
    ) -> None:
        self._host = host
        self._port = port
        self._client_id = client_id
        self._login = login or Login()
        self._client: aiomqtt.Client | None = None
        self._reader: asyncio.Task[None] | None = None
        self._subscriptions: list[Subscription] = []
        self.rejected = 0

    async def connect(self) -> MqttBus:
        login = self._login
        tls = tls_context(login.ca_file) if login.ca_file else None
        client = aiomqtt.Client(
            self._host,
            self._port,
            identifier=self._client_id or None,
            username=login.username,
            password=login.password,
            tls_context=tls,
        )
        try:
            await client.__aenter__()
        except (aiomqtt.MqttError, OSError) as err:
            client._client._sock_close()  # a refused connection leaves its socket open
            if tls is not None:
                tls.close_opened()
            raise BusError(refusal(self._host, self._port, login, str(err))) from err
        self._client = client
        self._reader = asyncio.create_task(self._read(client), name="mqtt-bus-reader")
        return self

    async def _read(self, client: aiomqtt.Client) -> None:
        with contextlib.suppress(aiomqtt.MqttError):
            async for msg in client.messages:
                topic = str(msg.topic)
                payload = msg.payload
                if not isinstance(payload, bytes | bytearray | str):
                    self.rejected += 1
                    continue
                try:
                    message = decode(bytes(payload) if not isinstance(payload, str) else payload)
                except (ValidationError, ValueError, UnicodeError) as err:
                    self.rejected += 1
                    if self.rejected == 1 or self.rejected % 1000 == 0:  # not once per message
                        log.warning(
                            "rejected a malformed message on %s (%d so far): %.300s",
                            topic,
                            self.rejected,
                            err,
                        )
                    continue
                for sub in self._subscriptions:
                    if topic_matches(sub.pattern, topic):
                        sub.deliver(topic, message)

    def _need_client(self) -> aiomqtt.Client:
        if self._client is None:
            raise BusError("the MQTT bus is not connected: call connect() first")
        return self._client

    async def publish(self, topic: str, message: BusMessage) -> None:
        if "+" in topic or "#" in topic:
            raise BusError(f"cannot publish to {topic!r}: wildcards are for subscriptions")
        try:
            await self._need_client().publish(topic, encode(message), qos=1)
        except aiomqtt.MqttError as err:
            raise BusError(f"publish to {topic!r} failed: {err}") from err

    async def subscribe(self, pattern: str) -> Subscription:
        check_filter(pattern)
        sub = Subscription(pattern)
        self._subscriptions.append(sub)
        try:
            await self._need_client().subscribe(pattern, qos=1)
        except aiomqtt.MqttError as err:
            self._subscriptions.remove(sub)
            raise BusError(f"subscribe to {pattern!r} failed: {err}") from err
        return sub

    async def unsubscribe(self, subscription: Subscription) -> None:
        if subscription not in self._subscriptions:
            return
        self._subscriptions.remove(subscription)
        subscription.end()
        if all(s.pattern != subscription.pattern for s in self._subscriptions):
            with contextlib.suppress(aiomqtt.MqttError):
                await self._need_client().unsubscribe(subscription.pattern)

    async def close(self) -> None:
        for sub in self._subscriptions:
            sub.end()
        self._subscriptions.clear()
        client, self._client = self._client, None
        if client is not None:
            with contextlib.suppress(aiomqtt.MqttError):
                await client.__aexit__(None, None, None)
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reader
            self._reader = None
