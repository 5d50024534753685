"""``openmeg site``: site files, the description of one MEG."""

from __future__ import annotations

import typer

site_app = typer.Typer(help="Site files: the description of one MEG.", no_args_is_help=True)


@site_app.command("check")
def site_check(file: str = typer.Argument(..., help="site file, or a shipped site name")) -> None:
    """Validate a site file: exit 0, or 2 with one line per problem."""
    import yaml

    from openmeg.cli.common import err_console, load_site_with_notes_or_exit
    from openmeg.core.site import resolve_site_path

    site, notes = load_site_with_notes_or_exit(file)
    for note in notes:
        err_console.print(
            f"deprecated: {file}: {note} (the simulated plant's description belongs in "
            "scenario; see docs/site-file.md)",
            markup=False,
            highlight=False,
            soft_wrap=True,
        )
    print(
        f"{file}: ok: site {site.site.id!r}, {len(site.devices)} devices, "
        f"{len(site.meters)} meters, {len(site.customers)} customers"
    )
    if "controllers" not in yaml.safe_load(resolve_site_path(file).read_text(encoding="utf-8")):
        running = ", ".join(f"{c.kind} (priority {c.priority})" for c in site.controllers)
        print(f"{file}: no controllers section: the defaults run: {running or 'none'}")


@site_app.command("schema")
def site_schema() -> None:
    """Print the JSON Schema of a site file (fields, units, accepted values)."""
    import json

    from openmeg.core.site import site_schema as schema

    print(json.dumps(schema(), indent=2))
