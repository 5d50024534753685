"""The Mosquitto 2.0 configuration openmeg needs, as text: no anonymous clients, a password
file, an ACL per component (from ``openmeg.core.bus_acl``), TLS, persistence and queues sized
for metering (the MDMS ingest's persistent session keeps what arrives while it is down)."""

from __future__ import annotations

import base64
import hashlib
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from openmeg.core.bus_acl import COMPONENTS, filters, user_name

PBKDF2_ITERATIONS = 101  # what mosquitto_passwd writes for $7$
OPERATOR = "operator"


@dataclass(frozen=True, kw_only=True, slots=True)
class BrokerOptions:
    """Where the broker listens and what it keeps."""

    tls_port: int = 8883
    tls_bind: str = ""  # all interfaces
    plain_port: int | None = None  # on 127.0.0.1 only, if asked
    max_queued_messages: int = 1_000_000
    max_queued_bytes: int = 1024 * 1024 * 1024
    persistent_client_expiration: str = "30d"
    autosave_interval_s: int = 30
    max_packet_size: int = 1024 * 1024


def password_hash(password: str, salt: bytes | None = None) -> str:
    """Mosquitto's ``$7$`` hash of ``password`` (PBKDF2-SHA512, as ``mosquitto_passwd``)."""
    salt = salt if salt is not None else secrets.token_bytes(12)
    digest = hashlib.pbkdf2_hmac("sha512", password.encode(), salt, PBKDF2_ITERATIONS)
    return (
        f"$7${PBKDF2_ITERATIONS}${base64.b64encode(salt).decode()}"
        f"${base64.b64encode(digest).decode()}"
    )


def password_file(site: str, passwords: Mapping[str, str]) -> str:
    """One ``user:hash`` line per component of ``site`` that has a password."""
    return "".join(f"{user_name(site, c)}:{password_hash(p)}\n" for c, p in passwords.items())


def acl_file(site: str, extra_users: Mapping[str, Sequence[str]] | None = None) -> str:
    """Each component's user: read ``meg/<site>/#``, write its own topics (denied ones first);
    ``extra_users``: user -> topic filters it may read and write (e.g. a test client)."""
    out = [f"# openmeg bus ACL for site {site}: generated from openmeg.core.bus_acl\n"]
    for c in COMPONENTS:
        out.append(f"\n# {c.name}: {c.what}\nuser {user_name(site, c.name)}\n")
        out += [f"topic deny {t}\n" for t in filters(site, c.denies)]
        out += [f"topic read {t}\n" for t in filters(site, c.reads)]
        out += [f"topic write {t}\n" for t in filters(site, c.publishes)]
    for user, topics in (extra_users or {}).items():
        out.append(f"\nuser {user}\n")
        out += [f"topic readwrite {t}\n" for t in topics]
    return "".join(out)


def mosquitto_conf(
    site: str, root: Path, *, certfile: Path, keyfile: Path, options: BrokerOptions
) -> str:
    """``mosquitto.conf`` with its files (passwd, acl, data/) in ``root``."""
    o = options
    lines = [
        f"# openmeg broker for site {site} (openmeg mqtt init); start: mosquitto -c <this file>",
        "per_listener_settings false",
        "allow_anonymous false",
        f"password_file {root / 'passwd'}",
        f"acl_file {root / 'acl'}",
        "persistence true",
        f"persistence_location {root / 'data'}/",
        f"autosave_interval {o.autosave_interval_s}",
        f"max_queued_messages {o.max_queued_messages}",
        f"max_queued_bytes {o.max_queued_bytes}",
        f"persistent_client_expiration {o.persistent_client_expiration}",
        f"max_packet_size {o.max_packet_size}",
        "",
        f"listener {o.tls_port} {o.tls_bind}".rstrip(),
        f"certfile {certfile}",
        f"keyfile {keyfile}",
        "tls_version tlsv1.2",
    ]
    if o.plain_port is not None:
        lines += ["", f"listener {o.plain_port} 127.0.0.1"]
    return "\n".join(lines) + "\n"
