"""``openmeg mqtt init``: the broker configuration openmeg needs, with generated credentials
kept in the keystore."""

from __future__ import annotations

import os
import secrets
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from openmeg.cli.broker import KEYSTORE
from openmeg.cli.common import EXIT_BAD_INPUT, err_console

if TYPE_CHECKING:
    from openmeg.core.keystore import Keystore
    from openmeg.protocols.broker_config import BrokerOptions

mqtt_app = typer.Typer(
    help="The MQTT broker: its authenticated configuration.", no_args_is_help=True
)


def _write(path: Path, text: str, mode: int = 0o644) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "w") as f:
        f.write(text)
    os.chmod(path, mode)


def component_passwords(keystore: Keystore, *, rotate: bool = False) -> dict[str, str]:
    """Each component's broker password, from the keystore (``mqtt/<component>``); generated
    and kept there when it has none (or with ``rotate``)."""
    from openmeg.core.bus_acl import COMPONENTS

    out: dict[str, str] = {}
    for c in COMPONENTS:
        name = f"mqtt/{c.name}"
        found = None if rotate else keystore.get(name)
        if found is None:
            found = secrets.token_urlsafe(24).encode()
            keystore.put(name, found)
        out[c.name] = found.decode()
    return out


def write_broker_dir(
    out: Path,
    site: str,
    keystore: Keystore,
    options: BrokerOptions,
    *,
    hosts: Sequence[str] = (),
    rotate: bool = False,
    extra_users: Mapping[str, tuple[str, Sequence[str]]] | None = None,
) -> Path:
    """Write ``mosquitto.conf``, ``passwd``, ``acl``, ``tls/`` and ``data/`` into ``out``;
    ``extra_users``: user -> (password, topics it may read and write). Returns the conf."""
    from openmeg.protocols.broker_config import (
        acl_file,
        mosquitto_conf,
        password_file,
        password_hash,
    )
    from openmeg.protocols.tls import init_site_certificates

    out = out.resolve()
    out.mkdir(parents=True, exist_ok=True)
    (out / "data").mkdir(exist_ok=True)
    tls = out / "tls"
    if not (tls / "server.pem").exists():
        init_site_certificates(tls, site, hosts=list(hosts))
    passwords = component_passwords(keystore, rotate=rotate)
    extra = extra_users or {}
    lines = password_file(site, passwords)
    lines += "".join(f"{u}:{password_hash(p)}\n" for u, (p, _) in extra.items())
    _write(out / "passwd", lines, 0o600)
    _write(out / "acl", acl_file(site, {u: t for u, (_, t) in extra.items()}))
    conf = out / "mosquitto.conf"
    _write(
        conf,
        mosquitto_conf(
            site, out, certfile=tls / "server.pem", keyfile=tls / "server.key", options=options
        ),
    )
    return conf


@mqtt_app.command("init")
def mqtt_init(
    out: Path = typer.Option(Path("mqtt"), help="the folder to write the configuration into"),
    site: str = typer.Option("demo", help="the site id"),
    keystore: Path | None = KEYSTORE,
    tls_port: int = typer.Option(8883, min=1, max=65535, help="the TLS listener's port"),
    bind: str = typer.Option("", help="the TLS listener's address (default: every interface)"),
    plain_port: int = typer.Option(
        0, min=0, max=65535, help="also a plain listener on 127.0.0.1 at this port (0: none)"
    ),
    host: list[str] = typer.Option([], help="a host name the broker's certificate names"),
    rotate: bool = typer.Option(False, help="generate new passwords for every component"),
) -> None:
    """Write a Mosquitto 2.0 configuration: no anonymous clients, one user per component
    (openmeg-<site>-<component>, passwords in the keystore), per-component ACLs, TLS, queues
    sized for metering."""
    from openmeg.core.errors import OpenMegError
    from openmeg.core.keystore import open_keystore
    from openmeg.protocols.broker_config import BrokerOptions

    options = BrokerOptions(tls_port=tls_port, tls_bind=bind, plain_port=plain_port or None)
    try:
        store = open_keystore(keystore, site_id=site)
        conf = write_broker_dir(out, site, store, options, hosts=host, rotate=rotate)
    except (OpenMegError, OSError, ValueError) as err:
        err_console.print(f"error: {err}", markup=False)
        raise typer.Exit(EXIT_BAD_INPUT) from err
    ca = conf.parent / "tls" / "ca.pem"
    print(f"wrote {conf} (passwords in the keystore as mqtt/<component>)")
    print(f"start the broker:  mosquitto -c {conf}")
    if os.geteuid() == 0:
        print(f"  (started as root it runs as user mosquitto: chown -R mosquitto: {conf.parent})")
    print(
        f"run the MEG on it: openmeg run --site {site} --mqtt 127.0.0.1:{tls_port} --mqtt-ca {ca}"
    )
