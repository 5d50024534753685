"""What the ``openmeg`` commands that reach the MQTT broker share: its CA, the keystore that
holds each component's password, and the access built from them."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import typer

from openmeg.core.bus_acl import COMPONENTS

if TYPE_CHECKING:
    from openmeg.core.keystore import Keystore
    from openmeg.protocols.broker_access import BrokerAccess, Login

MQTT_CA = typer.Option(
    None,
    "--mqtt-ca",
    envvar="OPENMEG_MQTT_CA",
    help="the site CA (ca.pem written by openmeg mqtt init): TLS to the broker, its certificate "
    "and host name verified",
)
KEYSTORE = typer.Option(
    None,
    "--keystore",
    envvar="OPENMEG_KEYSTORE",
    help="the keystore holding the broker passwords (default ./openmeg-<site>.keystore)",
)


def broker_access(mqtt: str, site_id: str, ca: Path | None, keys: Keystore) -> BrokerAccess:
    """The broker at ``mqtt`` (HOST:PORT) and each component's password from ``keys``."""
    from openmeg.cli.common import broker_address
    from openmeg.protocols.broker_access import BrokerAccess

    host, port = broker_address(mqtt)
    passwords = {}
    for c in COMPONENTS:
        secret = keys.get(f"mqtt/{c.name}")
        if secret is not None:
            passwords[c.name] = secret.decode()
    return BrokerAccess(host=host, port=port, site=site_id, passwords=passwords, ca_file=ca)


def component_login(
    mqtt: str, site_id: str, component: str, ca: Path | None, keystore: Path | None
) -> tuple[str, int, Login]:
    """``(host, port, login)`` of one component; ``BusError`` when it has no password."""
    from openmeg.core.keystore import open_keystore

    access = broker_access(mqtt, site_id, ca, open_keystore(keystore, site_id=site_id))
    return access.host, access.port, access.login(component)
