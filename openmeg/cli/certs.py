"""``openmeg certs``: the site's certificate authority and server certificate (their keys in
the keystore)."""

from __future__ import annotations

from pathlib import Path

import typer

from openmeg.cli.common import SITE, fail, load_site_or_exit

certs_app = typer.Typer(help="The site's certificate authority and server certificate.")


@certs_app.command("init")
def certs_init(
    out: Path = typer.Option(Path("certs"), help="folder for ca.pem and server.pem"),
    host: list[str] = typer.Option(
        [], help="a name or address the server answers on (repeatable; localhost always)"
    ),
    site: str = SITE,
    force: bool = typer.Option(False, help="replace certificates and keys already there"),
) -> None:
    """Create a site CA and a server certificate signed by it (openmeg run --tls-dir); their
    keys go into the keystore, never into a file."""
    from openmeg.cli.keys import keystore_or_exit
    from openmeg.protocols.tls import init_site_certificates

    the_site = load_site_or_exit(site)
    keys = keystore_or_exit(the_site.site.id)
    try:
        made = init_site_certificates(out, the_site.site.id, keystore=keys, hosts=host, force=force)
    except (FileExistsError, ValueError) as err:
        fail(str(err))
    for p in made:
        print(p)
    print(f"their keys: ca/key and tls/server-key in the keystore {keys.path}")


@certs_app.command("key-file")
def certs_key_file(
    out: Path = typer.Option(..., help="where to write the server key (mode 0600)"),
    site: str = SITE,
) -> None:
    """Write the server key to a file (mode 0600) for a server that can only load key files,
    such as a Mosquitto TLS listener; openmeg's own API needs none."""
    from openmeg.cli.keys import keystore_or_exit
    from openmeg.protocols.tls import write_server_key

    the_site = load_site_or_exit(site)
    try:
        write_server_key(keystore_or_exit(the_site.site.id), out)
    except (FileNotFoundError, OSError) as err:
        fail(str(err))
    print(f"{out} (mode 0600): keep it readable by the server's user alone")
