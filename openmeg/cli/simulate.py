"""``openmeg simulate``: the whole MEG in simulated time."""

from __future__ import annotations

from pathlib import Path

import typer

from openmeg.cli.common import EXIT_BAD_INPUT, err_console, load_simulated_site_or_exit


def simulate(
    site: str = typer.Option("demo", help="site file, or a shipped site name"),
    days: float = typer.Option(365.0, min=0.0, help="how many days to simulate"),
    step: str = typer.Option("1min", help="step length: 15s, 1min, 15min, 1h, ..."),
    start: str = typer.Option(
        "2026-01-01T00:00:00Z", help="first instant (ISO 8601, UTC if no zone)"
    ),
    out: Path = typer.Option(Path("out/simulation"), help="folder for summary, Parquet and report"),
    scenario: str = typer.Option(
        "",
        help="scenario file played in place of the site file's scenario section (weather, "
        "outages, simulation settings, device physics)",
    ),
) -> None:
    """Run the whole MEG in simulated time; write summary.json, timeseries.parquet, report.html."""
    from datetime import UTC, datetime

    from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

    from openmeg.sim.report import write_results
    from openmeg.sim.scenario import parse_step_s
    from openmeg.sim.scenario import simulate as run_simulation
    from openmeg.sim.summary import summarize

    the_site = load_simulated_site_or_exit(site, scenario or None)
    try:
        step_s = parse_step_s(step)
        first = datetime.fromisoformat(start.replace("Z", "+00:00"))
        first = first if first.tzinfo else first.replace(tzinfo=UTC)
    except ValueError as err:
        err_console.print(f"error: {err}", markup=False)
        raise typer.Exit(EXIT_BAD_INPUT) from err
    columns = (
        TextColumn("simulating"),
        BarColumn(),
        TextColumn("{task.percentage:>5.1f}%"),
        TimeRemainingColumn(),
    )
    with Progress(*columns, console=err_console, transient=True) as bar:
        task = bar.add_task("sim", total=1.0)
        engine = run_simulation(
            the_site,
            start=first,
            days=days,
            step_s=step_s,
            progress=lambda k, n: bar.update(task, completed=k / n),
        )
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
