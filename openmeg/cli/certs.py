"""``openmeg certs``: the site's certificate authority and server certificate."""

from __future__ import annotations

from pathlib import Path

import typer

from openmeg.cli.common import SITE, fail, load_site_or_exit

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
