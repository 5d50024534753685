"""How a component reaches the MQTT broker: address, its user name and password, and TLS
verified against the site CA (certificate and host name)."""

from __future__ import annotations

import ssl
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from openmeg.core.bus_acl import user_name
from openmeg.core.errors import BusError

INIT_HINT = "run `openmeg mqtt init` and start mosquitto with the configuration it writes"


@dataclass(frozen=True, kw_only=True, slots=True)
class Login:
    """One client's credentials and TLS: ``ca_file`` set means TLS, verified against it."""

    username: str | None = None
    password: str | None = None
    ca_file: Path | None = None


@dataclass(frozen=True, kw_only=True, slots=True)
class BrokerAccess:
    """The broker at ``host:port`` and the password of each component of ``site``."""

    host: str = "127.0.0.1"
    port: int = 1883
    site: str = "demo"
    passwords: Mapping[str, str] = field(default_factory=dict)
    ca_file: Path | None = None

    def login(self, component: str) -> Login:
        """The credentials of ``component``; ``BusError`` when it has none."""
        password = self.passwords.get(component)
        if password is None:
            raise BusError(
                f"no broker password for component {component!r} of site {self.site!r} "
                f"(keystore name mqtt/{component}): {INIT_HINT}"
            )
        return Login(
            username=user_name(self.site, component), password=password, ca_file=self.ca_file
        )


class ClientTls(ssl.SSLContext):
    """A client context that keeps the sockets it wrapped, to close them when a handshake
    fails (the MQTT client leaves them open)."""

    opened: list[ssl.SSLSocket]

    def wrap_socket(self, *args: Any, **kwargs: Any) -> ssl.SSLSocket:
        wrapped = super().wrap_socket(*args, **kwargs)
        self.opened.append(wrapped)
        return wrapped

    def close_opened(self) -> None:
        """Close what a failed connection left open."""
        for sock in self.opened:
            sock.close()
        self.opened.clear()


def tls_context(ca_file: Path) -> ClientTls:
    """A client context that trusts only ``ca_file`` and checks the broker's host name."""
    context = ClientTls(ssl.PROTOCOL_TLS_CLIENT)  # verifies certificate and host name
    context.opened = []
    try:
        context.load_verify_locations(cafile=str(ca_file))
    except (OSError, ssl.SSLError) as err:
        raise BusError(f"cannot read the broker's CA file {ca_file}: {err}") from err
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    return context


def refusal(host: str, port: int, login: Login, reason: str) -> str:
    """What to say when the broker at ``host:port`` refused ``login`` for ``reason``."""
    who = login.username or "an anonymous client"
    lowered = reason.lower()
    if "not authori" in lowered or "bad user" in lowered or "password" in lowered:
        return f"the broker at {host}:{port} refused {who}: bad user name or password; {INIT_HINT}"
    if "certificate" in lowered or "ssl" in lowered or "hostname" in lowered:
        return (
            f"TLS with the broker at {host}:{port} failed: {reason}; give the site CA "
            "(--mqtt-ca, the ca.pem `openmeg mqtt init` wrote) and a host name in its certificate"
        )
    return f"cannot reach the MQTT broker at {host}:{port}: {reason}; start mosquitto ({INIT_HINT})"
