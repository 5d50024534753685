"""``openmeg vee``: validation, estimation and editing of meter data."""

from __future__ import annotations

import typer

from openmeg.cli.common import (
    EXIT_BAD_INPUT,
    SITE,
    STORE,
    err_console,
    load_site_or_exit,
    open_store,
)
from openmeg.cli.dask_option import PARTITION_SIZE, SCHEDULER, WORKERS, check

vee_app = typer.Typer(
    help="Validation, estimation and editing of meter data.", no_args_is_help=True
)


@vee_app.command("run")
def vee_run(
    period: str = typer.Option(..., help="month to validate, YYYY-MM (local time)"),
    site: str = SITE,
    store: str = STORE,
    workers: int | None = WORKERS,
    scheduler: str = SCHEDULER,
    partition_size: int = PARTITION_SIZE,
) -> None:
    """Validate every meter channel of a month; estimate what must be; store new versions of
    the intervals that changed. Exits 1 when a channel could not be done, saying why. With
    --workers or --scheduler the meters are validated in partitions on Dask workers, which
    write to the store themselves: it must be PostgreSQL."""
    from collections.abc import Iterable
    from datetime import UTC, datetime

    from openmeg.core.errors import OpenMegError
    from openmeg.core.partitions import cluster, shared_store_url
    from openmeg.operation.mdms.vee_partitions import vee_site_partitioned
    from openmeg.operation.mdms.vee_run import ChannelVee, vee_site
    from openmeg.provider.billing_run import month_bounds

    check(workers, scheduler)
    the_site = load_site_or_exit(site)
    try:
        start, end = month_bounds(period, the_site.site.timezone)
    except ValueError as err:
        err_console.print(f"error: {err}")
        raise typer.Exit(EXIT_BAD_INPUT) from err
    db = open_store(store, the_site.site.id)
    failed = done = 0
    empty: list[str] = []
    try:
        now = datetime.now(UTC)
        t0, t1 = start.to_pydatetime(), end.to_pydatetime()
        if workers is None and not scheduler:
            outcomes: Iterable[ChannelVee] = vee_site(the_site, db, t0, t1, now=now)
        else:
            shared_store_url(db.url, writes=True)  # refused before a cluster starts
            with cluster(workers, scheduler or None) as client:
                outcomes = vee_site_partitioned(
                    the_site, db.url, t0, t1, now=now, client=client, size=partition_size
                )
        for r in outcomes:
            if r.empty:
                empty.append(f"{r.meter} {r.channel}")
                continue
            if r.problem:
                failed += 1
                err_console.print(
                    f"{r.meter} {r.channel}: cannot estimate: {r.problem}", markup=False
                )
                continue
            done += 1
            rules = ", ".join(f"{k} {n}" for k, n in r.rules)
            print(
                f"{r.meter} {r.channel}: {r.new_versions} new versions, {r.estimated} estimated"
                + (f"; flags: {rules}" if rules else "")
            )
    except OpenMegError as err:
        err_console.print(f"error: {err}", markup=False)
        raise typer.Exit(EXIT_BAD_INPUT) from err
    finally:
        db.close()
    if empty:
        shown = ", ".join(empty[:8]) + (f" and {len(empty) - 8} more" if len(empty) > 8 else "")
        err_console.print(f"no readings in {period}, nothing validated: {shown}", markup=False)
    if not done and not failed:
        err_console.print(
            f"error: no readings for {period}: import them (openmeg meters import) or run "
            "the MEG first"
        )
        raise typer.Exit(1)
    if failed:
        err_console.print(
            f"error: {failed} meter channel(s) of {period} could not be validated (above); "
            "their days stay unvalidated until the readings or history they need are there"
        )
        raise typer.Exit(1)
