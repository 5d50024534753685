"""``openmeg audit`` (the tamper-evident log), ``openmeg certs`` (the site's TLS certificates)
and ``openmeg users`` (identities for the API)."""

from __future__ import annotations

from pathlib import Path

import typer

from openmeg.cli_common import fail, load_site_or_exit, open_store

SITE = typer.Option("demo", help="site file, or a shipped site name")
STORE = typer.Option("", help="store URL (default: SQLite file openmeg-<site>.db)")


audit_app = typer.Typer(help="The tamper-evident audit log.", no_args_is_help=True)


@audit_app.command("verify")
def audit_verify(site: str = SITE, store: str = STORE) -> None:
    """Check the audit log's hash chain: exit 0 if intact, 1 naming every break."""
    from openmeg.core.audit import AuditLog

    the_site = load_site_or_exit(site)
    db = open_store(store, the_site.site.id)
    try:
        log = AuditLog(db)
        problems = log.verify()
        count = len(log.records(limit=10**9))
    finally:
        db.close()
    for p in problems:
        print(p)
    if problems:
        raise typer.Exit(1)
    print(f"intact: {count} records")


certs_app = typer.Typer(help="The site's certificate authority and server certificate.")


@certs_app.command("init")
def certs_init(
    out: Path = typer.Option(Path("certs"), help="folder for ca.pem, server.pem and their keys"),
    host: list[str] = typer.Option(
        [], help="a name or address the server answers on (repeatable; localhost always)"
    ),
    site: str = SITE,
    force: bool = typer.Option(False, help="replace certificates already there"),
) -> None:
    """Create a site CA and a server certificate signed by it (openmeg run --tls-dir)."""
    from openmeg.protocols.tls import init_site_certificates

    the_site = load_site_or_exit(site)
    try:
        made = init_site_certificates(out, the_site.site.id, hosts=host, force=force)
    except (FileExistsError, ValueError) as err:
        fail(str(err))
    for p in made:
        print(p)


users_app = typer.Typer(help="Users and API clients of the API.", no_args_is_help=True)


@users_app.command("add")
def users_add(
    name: str = typer.Argument(..., help="the user's or client's name"),
    role: str = typer.Option(..., help="operator, prosumer, service_provider or auditor"),
    customer: str = typer.Option("", help="a prosumer's customer id"),
    client: bool = typer.Option(False, help="an API client (client-credentials flow)"),
    site: str = SITE,
    store: str = STORE,
) -> None:
    """Add a user (or client) with a generated password, shown this once."""
    from datetime import UTC, datetime

    from openmeg.core.audit import AuditLog
    from openmeg.core.identity import Identities

    the_site = load_site_or_exit(site)
    if customer and customer not in {c.id for c in the_site.customers}:
        fail(f"unknown customer {customer!r}")
    db = open_store(store, the_site.site.id)
    now = datetime.now(UTC)
    try:
        secret = Identities(db).create(
            name, role, customer=customer or None, kind="client" if client else "user", now=now
        )
        AuditLog(db).append(
            ts=now,
            actor="command line",
            action="config",
            target=f"{'client' if client else 'user'}/{name}",
            detail={"role": role, "customer": customer or None},
        )
    except ValueError as err:
        fail(str(err))
    finally:
        db.close()
    print(f"{name} ({role}): {'secret' if client else 'password'} {secret} (shown this once)")


@users_app.command("list")
def users_list(site: str = SITE, store: str = STORE) -> None:
    """The users and clients, with their roles."""
    from openmeg.core.identity import Identities

    the_site = load_site_or_exit(site)
    db = open_store(store, the_site.site.id)
    try:
        for p in Identities(db).all():
            print(f"{p.name}: {p.role}" + (f" of {p.customer}" if p.customer else ""))
    finally:
        db.close()


@users_app.command("reset")
def users_reset(
    name: str = typer.Argument(..., help="whose password or secret to replace"),
    site: str = SITE,
    store: str = STORE,
) -> None:
    """A new generated password (or client secret), shown this once; the old one stops working."""
    from datetime import UTC, datetime

    from openmeg.core.audit import AuditLog
    from openmeg.core.identity import Identities

    the_site = load_site_or_exit(site)
    db = open_store(store, the_site.site.id)
    try:
        secret = Identities(db).reset(name)
        AuditLog(db).append(
            ts=datetime.now(UTC), actor="command line", action="config", target=f"password/{name}"
        )
    except ValueError as err:
        fail(str(err))
    finally:
        db.close()
    print(f"{name}: new password {secret} (shown this once)")
