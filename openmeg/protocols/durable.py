"""A durable MQTT subscriber: a persistent session with QoS 1 and manual acknowledgement, so a
message is acknowledged to the broker only after the application has stored it. If the process
dies first, the broker delivers the message again when it comes back (at least once); an
idempotent store makes that exactly once."""

from __future__ import annotations

import time
from dataclasses import dataclass

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from openmeg.core.errors import BusError
from openmeg.protocols.broker_access import Login, refusal, tls_context


@dataclass(frozen=True, kw_only=True, slots=True)
class Delivery:
    mid: int
    topic: str
    payload: bytes


class DurableSubscriber:
    """Collects messages of ``topic`` until ``take`` hands them out; ``ack`` confirms them
    (after the application made them durable: a batch at a time)."""

    def __init__(
        self, host: str, port: int, *, client_id: str, topic: str, login: Login | None = None
    ) -> None:
        self._client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=client_id,
            clean_session=False,
            manual_ack=True,
        )
        self._login = login = login or Login()
        self._where = (host, port)
        if login.username is not None:
            self._client.username_pw_set(login.username, login.password)
        tls = tls_context(login.ca_file) if login.ca_file else None
        if tls is not None:
            self._client.tls_set_context(tls)
        self._client.on_message = self._on_message
        self._client.on_connect = self._on_connect
        self._client.on_subscribe = self._on_subscribe
        self._topic = topic
        self._pending: list[Delivery] = []
        self._first_at: float | None = None
        self.connected = False
        self.refused = ""
        try:
            self._client.connect(host, port, keepalive=30)
        except (OSError, ValueError) as err:
            if tls is not None:
                tls.close_opened()
            raise BusError(refusal(host, port, login, str(err))) from err

    def _on_connect(
        self, client: mqtt.Client, _u: object, _f: object, rc: object, _p: object = None
    ) -> None:
        if getattr(rc, "is_failure", False):
            self.refused = refusal(*self._where, self._login, str(rc))
            return
        client.subscribe(self._topic, qos=1)

    def _on_subscribe(
        self, _c: mqtt.Client, _u: object, _mid: int, codes: object, _p: object
    ) -> None:
        self.connected = True  # the broker holds the subscription: nothing published is missed

    def _on_message(self, _c: mqtt.Client, _u: object, msg: mqtt.MQTTMessage) -> None:
        if not self._pending:
            self._first_at = time.monotonic()
        self._pending.append(Delivery(mid=msg.mid, topic=msg.topic, payload=bytes(msg.payload)))

    def poll(self, timeout_s: float = 0.1) -> None:
        """Let the network loop run: wait up to ``timeout_s`` for data, then read all that
        has come."""
        before, wait = -1, timeout_s
        while before < len(self._pending):
            before = len(self._pending)
            rc = self._client.loop(timeout=wait)
            if self.refused:
                raise BusError(self.refused)
            if rc != mqtt.MQTT_ERR_SUCCESS:
                raise BusError(f"MQTT connection lost: {mqtt.error_string(rc)}")
            wait = 0.0

    @property
    def pending(self) -> int:
        """How many messages wait to be taken."""
        return len(self._pending)

    def waited_s(self) -> float | None:
        """How long the oldest message waiting has waited (``None``: none waits)."""
        return None if self._first_at is None else time.monotonic() - self._first_at

    def take(self) -> list[Delivery]:
        out, self._pending, self._first_at = self._pending, [], None
        return out

    def ack(self, deliveries: list[Delivery]) -> None:
        """Confirm ``deliveries`` to the broker, sent at once."""
        for d in deliveries:
            self._client.ack(d.mid, 1)
        self._client.loop_write()

    def close(self) -> None:
        """Send what is queued (the last acknowledgements), then leave the session."""
        self._client.loop_write()
        self._client.disconnect()
        self._client.loop(0.2)  # sends it; the broker closes the connection after it
