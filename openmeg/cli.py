"""The ``openmeg`` command."""

from __future__ import annotations

import typer

app = typer.Typer(help="openmeg: run and study a micro energy grid (ITU-T Y.2071).",
                  no_args_is_help=True)


def main() -> None:
    app()
