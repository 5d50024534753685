"""The ``openmeg`` command."""

from __future__ import annotations

import typer
from rich.console import Console

from openmeg.core.errors import SiteFileError

app = typer.Typer(
    help="openmeg: run and study a micro energy grid (ITU-T Y.2071).", no_args_is_help=True
)
site_app = typer.Typer(help="Site files: the description of one MEG.", no_args_is_help=True)
app.add_typer(site_app, name="site")
err_console = Console(stderr=True)

EXIT_BAD_INPUT = 2


def _fail_site(err: SiteFileError) -> None:
    for problem in err.problems:
        err_console.print(f"error: {problem}", markup=False, highlight=False, soft_wrap=True)
    raise typer.Exit(EXIT_BAD_INPUT)


@site_app.command("check")
def site_check(file: str = typer.Argument(..., help="site file, or a shipped site name")) -> None:
    """Validate a site file: exit 0, or 2 with one line per problem."""
    from openmeg.core.site import load_site

    try:
        site = load_site(file)
    except SiteFileError as err:
        _fail_site(err)
        return
    print(
        f"{file}: ok: site {site.site.id!r}, {len(site.devices)} devices, "
        f"{len(site.meters)} meters, {len(site.customers)} customers"
    )


def main() -> None:
    app()
