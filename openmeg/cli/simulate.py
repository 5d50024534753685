"""``openmeg simulate``: the whole MEG in simulated time."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import typer

from openmeg.cli.common import (
    EXIT_BAD_INPUT,
    err_console,
    fail_all,
    load_simulated_site_or_exit,
    open_store,
)

if TYPE_CHECKING:
    from datetime import datetime

    import pandas as pd

    from openmeg.core.site import Site
    from openmeg.core.store import Store

CHUNK_DAYS = 31  # readings stored per transaction: a month at most


def simulate(
    site: str = typer.Option("demo", help="site file, or a shipped site name"),
    days: float = typer.Option(365.0, min=0.0, help="how many days to simulate"),
    step: str = typer.Option("1min", help="step length: 15s, 1min, 15min, 1h, ..."),
    start: str = typer.Option(
        "",
        help="first instant: a date (2026-10-01: midnight UTC) or an ISO 8601 instant (UTC if "
        "no zone; 2026-10-01T00:00+02:00 is midnight in Rome); default 2026-01-01 at "
        "midnight in the site's time zone, so that a year holds its local months whole",
    ),
    end: str = typer.Option(
        "",
        help="last instant (not included), in place of --days: an ISO 8601 instant like "
        "--start's (2026-11-01T00:00+01:00 ends October in Rome, whose 25 October has 25 hours)",
    ),
    out: Path = typer.Option(Path("out/simulation"), help="folder for summary, Parquet and report"),
    scenario: str = typer.Option(
        "",
        help="scenario file played in place of the site file's scenario section (weather, "
        "outages, simulation settings, device physics)",
    ),
    store: str = typer.Option(
        "",
        help="also store every meter's 15-minute readings in this store URL (e.g. "
        "sqlite+pysqlite:///openmeg-demo.db, the commands' default), as meters import would",
    ),
) -> None:
    """Run the whole MEG in simulated time; write summary.json, timeseries.parquet,
    meters.parquet (the meter file, as meters import reads it) and report.html; with --store,
    also store the meter readings for vee run and bill."""
    from datetime import timedelta

    from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

    from openmeg.cli.start_time import start_instant
    from openmeg.sim.report import meter_readings, write_results
    from openmeg.sim.scenario import parse_step_s
    from openmeg.sim.scenario import simulate as run_simulation
    from openmeg.sim.summary import summarize

    the_site = load_simulated_site_or_exit(site, scenario or None)
    try:
        step_s = parse_step_s(step)
        first = start_instant(start) if start else _new_year(the_site.site.timezone)
        if end:
            last = start_instant(end)
            if last <= first:
                raise ValueError(f"--end {end} is not after the start {first:%Y-%m-%dT%H:%M}Z")
            days = (last - first).total_seconds() / 86400.0
    except ValueError as err:
        err_console.print(f"error: {err}", markup=False)
        raise typer.Exit(EXIT_BAD_INPUT) from err
    if store and (step_s > 900 or 900 % round(step_s)):
        err_console.print(
            f"error: --store needs 15-minute readings: --step {step} does not divide 15 minutes",
            markup=False,
        )
        raise typer.Exit(EXIT_BAD_INPUT)
    db = open_store(store, the_site.site.id) if store else None  # before hours of work
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
    ended = first + timedelta(seconds=engine.k * engine.plant.step_s)
    if db is not None:
        _store_readings(the_site, meter_readings(engine), db, ended)
    else:
        print(
            f"to store the meter readings: openmeg meters import {paths['meters']} "
            f"--received-at {ended:%Y-%m-%dT%H:%M:%SZ}"
            + (f" --site {site}" if site != "demo" else "")
            + " (or simulate with --store)"
        )


def _new_year(timezone: str) -> datetime:
    """2026-01-01 00:00 in ``timezone``, as a UTC instant."""
    from datetime import UTC
    from datetime import datetime as dt
    from zoneinfo import ZoneInfo

    return dt(2026, 1, 1, tzinfo=ZoneInfo(timezone)).astimezone(UTC)


def _store_readings(site: Site, frame: pd.DataFrame, db: Store, end: datetime) -> None:
    """Store the simulated readings through ``MeterReadings.ingest`` (as ``meters import``),
    a month per transaction, received at the simulation's end; or exit 2 naming the problems."""
    import pandas as pd

    from openmeg.operation.mdms.store import IngestError, MeterReadings

    where = db.engine.url.render_as_string(hide_password=True)
    new = duplicates = clashes = 0
    try:
        readings = MeterReadings(db)
        meters = {m.id for m in site.meters}
        if not frame.empty:
            t0 = frame["interval_start"].min()
            chunk = (frame["interval_start"] - t0) // pd.Timedelta(days=CHUNK_DAYS)
            for _, part in frame.groupby(chunk.to_numpy(), sort=True):
                report = readings.ingest(part, meters=meters, source="simulate", received_at=end)
                new += report.new
                duplicates += report.duplicates
                clashes += len(report.conflicts)
    except IngestError as err:
        fail_all(err.problems)
    finally:
        db.close()
    print(
        f"stored in {where}: {new} new readings, {duplicates} already stored, "
        f"{clashes} conflicting (kept aside, not stored)"
    )
