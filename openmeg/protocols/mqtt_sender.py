"""A publisher that keeps no promise it cannot keep: QoS 1, connecting (again) when it needs to;
``send`` returns only once the broker acknowledged the message and raises ``BusError``
otherwise, so that the caller keeps the message to send again (the head-end's outbox)."""

from __future__ import annotations

import asyncio
import contextlib

import aiomqtt

from openmeg.core.errors import BusError
from openmeg.core.messages import BusMessage, encode
from openmeg.protocols.broker_access import Login, tls_context


class MqttSender:
    """Sends to the broker at ``host:port`` as ``username`` (a component's own identity)."""

    def __init__(
        self,
        host: str,
        port: int,
        *,
        client_id: str,
        login: Login | None = None,
        timeout_s: float = 5.0,
    ) -> None:
        """``login``: the component's credentials (TLS when it names a CA file)."""
        self._args = {"hostname": host, "port": port, "identifier": client_id}
        self._login = login or Login()
        self.timeout_s = timeout_s
        self._client: aiomqtt.Client | None = None

    async def send(self, topic: str, message: BusMessage) -> None:
        """Publish ``message``; return once the broker acknowledged it, else ``BusError``."""
        try:
            async with asyncio.timeout(self.timeout_s):
                if self._client is None:
                    login = self._login
                    client = aiomqtt.Client(
                        **self._args,  # type: ignore[arg-type]
                        username=login.username,
                        password=login.password,
                        tls_context=tls_context(login.ca_file) if login.ca_file else None,
                    )
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
