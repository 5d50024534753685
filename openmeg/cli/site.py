"""``openmeg site``: site files, the description of one MEG."""

from __future__ import annotations

import typer

from openmeg.cli.common import load_site_or_exit

site_app = typer.Typer(help="Site files: the description of one MEG.", no_args_is_help=True)


@site_app.command("check")
def site_check(file: str = typer.Argument(..., help="site file, or a shipped site name")) -> None:
    """Validate a site file: exit 0, or 2 with one line per problem."""
    site = load_site_or_exit(file)
    print(
        f"{file}: ok: site {site.site.id!r}, {len(site.devices)} devices, "
        f"{len(site.meters)} meters, {len(site.customers)} customers"
    )
