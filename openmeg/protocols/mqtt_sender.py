"""A publisher that keeps no promise it cannot keep: QoS 1, connecting (again) when it needs to;
``send`` returns only once the broker acknowledged the message and raises ``BusError``
otherwise, so that the caller keeps the message to send again (the head-end's outbox)."""

from __future__ import annotations

import asyncio
import contextlib

import aiomqtt

from openmeg.core.errors import BusError
from openmeg.core.messages import BusMessage, encode


class MqttSender:
    """Sends to the broker at ``host:port`` as ``username`` (a component's own identity)."""

    def __init__(
        self,
        host: str,
        port: int,
        *,
        client_id: str,
        username: str | None = None,
        password: str | None = None,
        timeout_s: float = 5.0,
    ) -> None:
        self._args = {"hostname": host, "port": port, "identifier": client_id}
        self._auth = {"username": username, "password": password} if username else {}
        self.timeout_s = timeout_s
        self._client: aiomqtt.Client | None = None

    async def send(self, topic: str, message: BusMessage) -> None:
        """Publish ``message``; return once the broker acknowledged it, else ``BusError``."""
        try:
            async with asyncio.timeout(self.timeout_s):
                if self._client is None:
                    client = aiomqtt.Client(**self._args, **self._auth)  # type: ignore[arg-type]
                    await client.__aenter__()
                    self._client = client
                await self._client.publish(topic, encode(message), qos=1)
        except (aiomqtt.MqttError, TimeoutError) as err:
            await self.close()
            raise BusError(f"the broker did not take the message for {topic!r}: {err}") from err

    async def close(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            with contextlib.suppress(aiomqtt.MqttError, TimeoutError, RuntimeError):
                async with asyncio.timeout(self.timeout_s):
                    await client.__aexit__(None, None, None)
