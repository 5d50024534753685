"""``openmeg audit``: the tamper-evident audit log, keyed with the site's audit key."""

from __future__ import annotations

from pathlib import Path

import typer

from openmeg.cli.common import SITE, STORE, fail, open_site_store

audit_app = typer.Typer(help="The tamper-evident audit log.", no_args_is_help=True)


@audit_app.command("verify")
def audit_verify(
    site: str = SITE,
    store: str = STORE,
    anchor: Path | None = typer.Option(
        None, help="an anchor from openmeg audit anchor: check the log still holds it"
    ),
) -> None:
    """Check the audit log's keyed chain (and an anchor): exit 0 if intact, 1 naming every
    break and the records where it is."""
    from openmeg.cli.keys import audit_or_exit
    from openmeg.core.audit import Anchor

    held = None
    if anchor is not None:
        try:
            held = Anchor.from_json(anchor.read_text())
        except (OSError, ValueError) as err:
            fail(f"{anchor}: {err}")
    the_site, db = open_site_store(site, store)
    try:
        log = audit_or_exit(the_site.site.id, db)
        problems = log.verify()
        if held is not None:
            problems += log.verify_anchor(held)
        count = log.count()
    finally:
        db.close()
    for p in problems:
        print(p)
    if problems:
        raise typer.Exit(1)
    print(
        f"intact: {count} records" + (f", holding the anchor of record {held.seq}" if held else "")
    )


@audit_app.command("anchor")
def audit_anchor(
    site: str = SITE,
    store: str = STORE,
    out: Path | None = typer.Option(None, help="write the anchor to this file (else print it)"),
) -> None:
    """The head of an intact log (record number, hash, time) under the audit key's HMAC, to
    keep off the machine (e.g. every hour to another host) for openmeg audit verify --anchor."""
    from datetime import UTC, datetime

    from openmeg.cli.keys import audit_or_exit

    the_site, db = open_site_store(site, store)
    try:
        log = audit_or_exit(the_site.site.id, db)
        problems = log.verify()
        if problems:
            for p in problems:
                print(p)
            fail("the audit log is not intact: no anchor taken", code=1)
        try:
            anchor = log.anchor(datetime.now(UTC))
        except ValueError as err:
            fail(str(err))
    finally:
        db.close()
    if out is None:
        print(anchor.to_json(), end="")
    else:
        out.write_text(anchor.to_json())
        print(f"anchor of record {anchor.seq} written to {out}")
