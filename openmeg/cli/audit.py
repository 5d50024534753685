"""``openmeg audit``: the tamper-evident audit log."""

from __future__ import annotations

import typer

from openmeg.cli.common import SITE, STORE, open_site_store

audit_app = typer.Typer(help="The tamper-evident audit log.", no_args_is_help=True)


@audit_app.command("verify")
def audit_verify(site: str = SITE, store: str = STORE) -> None:
    """Check the audit log's hash chain: exit 0 if intact, 1 naming every break."""
    from openmeg.core.audit import AuditLog

    _, db = open_site_store(site, store)
    try:
        log = AuditLog(db)
        problems = log.verify()
        count = log.count()
    finally:
        db.close()
    for p in problems:
        print(p)
    if problems:
        raise typer.Exit(1)
    print(f"intact: {count} records")
