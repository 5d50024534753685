"""The ``openmeg`` command."""

from __future__ import annotations

from pathlib import Path

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


@app.command()
def simulate(
    site: str = typer.Option("demo", help="site file, or a shipped site name"),
    days: float = typer.Option(365.0, min=0.0, help="how many days to simulate"),
    step: str = typer.Option("1min", help="step length: 15s, 1min, 15min, 1h, ..."),
    start: str = typer.Option("2026-01-01T00:00:00Z", help="first instant (ISO 8601, UTC if no zone)"),
    out: Path = typer.Option(Path("out/simulation"), help="folder for summary, Parquet and report"),
) -> None:
    """Run the whole MEG in simulated time and write summary.json, timeseries.parquet, report.html."""
    from datetime import UTC, datetime

    from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

    from openmeg.core.site import load_site
    from openmeg.sim.report import write_results
    from openmeg.sim.scenario import parse_step_s
    from openmeg.sim.scenario import simulate as run_simulation
    from openmeg.sim.summary import summarize

    try:
        the_site = load_site(site)
    except SiteFileError as err:
        _fail_site(err)
        return
    try:
        step_s = parse_step_s(step)
        first = datetime.fromisoformat(start.replace("Z", "+00:00"))
        first = first if first.tzinfo else first.replace(tzinfo=UTC)
    except ValueError as err:
        err_console.print(f"error: {err}", markup=False)
        raise typer.Exit(EXIT_BAD_INPUT) from err
    columns = (TextColumn("simulating"), BarColumn(), TextColumn("{task.percentage:>5.1f}%"),
               TimeRemainingColumn())  # fmt: skip
    with Progress(*columns, console=err_console, transient=True) as bar:
        task = bar.add_task("sim", total=1.0)
        engine = run_simulation(the_site, start=first, days=days, step_s=step_s,
                                progress=lambda k, n: bar.update(task, completed=k / n))  # fmt: skip
    summary = summarize(engine)
    paths = write_results(engine, summary, out)
    print(
        f"simulated {summary['steps']} steps: load {summary['load_kwh']:.0f} kWh, "
        f"import {summary['import_kwh']:.0f} kWh, export {summary['export_kwh']:.0f} kWh, "
        f"self-sufficiency {summary['self_sufficiency']:.1%}, "
        f"islanded {summary['islanded_hours']:.1f} h, "
        f"balance error {summary['balance_error_kwh']:.2e} kWh"
    )
    for name, path in paths.items():
        print(f"{name}: {path}")


def main() -> None:
    app()
