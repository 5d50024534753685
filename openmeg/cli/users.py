"""``openmeg users``: the users and API clients of the API."""

from __future__ import annotations

import typer

from openmeg.cli.common import SITE, STORE, fail, load_site_or_exit, open_site_store, open_store

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

    from openmeg.cli.keys import audit_or_exit
    from openmeg.core.user_admin import add_principal

    the_site = load_site_or_exit(site)
    if customer and customer not in {c.id for c in the_site.customers}:
        fail(f"unknown customer {customer!r}")
    db = open_store(store, the_site.site.id)
    try:
        secret = add_principal(
            db,
            name,
            role,
            customer=customer or None,
            kind="client" if client else "user",
            now=datetime.now(UTC),
            actor="command line",
            audit=audit_or_exit(the_site.site.id, db),
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

    _, db = open_site_store(site, store)
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

    from openmeg.cli.keys import audit_or_exit
    from openmeg.core.user_admin import reset_secret

    the_site, db = open_site_store(site, store)
    try:
        audit = audit_or_exit(the_site.site.id, db)
        secret = reset_secret(db, name, now=datetime.now(UTC), actor="command line", audit=audit)
    except ValueError as err:
        fail(str(err))
    finally:
        db.close()
    print(f"{name}: new password {secret} (shown this once)")
