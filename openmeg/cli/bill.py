"""``openmeg bill`` and ``openmeg basic-charge``: what the provider charges for a month."""

from __future__ import annotations

from pathlib import Path

import typer

from openmeg.cli.common import (
    EXIT_BAD_INPUT,
    SITE,
    STORE,
    err_console,
    fail,
    load_site_or_exit,
    open_store,
)
from openmeg.cli.dask_option import PARTITION_SIZE, SCHEDULER, WORKERS, check


def bill_cmd(
    period: str = typer.Option(..., help="month to bill, YYYY-MM (local time)"),
    site: str = SITE,
    store: str = STORE,
    out: Path = typer.Option(Path("out/bills"), help="folder for the HTML and PDF bills"),
    customer: list[str] = typer.Option([], help="bill only these customers"),
    workers: int | None = WORKERS,
    scheduler: str = SCHEDULER,
    partition_size: int = PARTITION_SIZE,
) -> None:
    """Bill and issue a month from validated readings: a numbered bill per customer (HTML and
    PDF); run again after late readings or corrections, it issues a revision with a credit or
    debit note where a bill changed, and nothing where none did. With --workers or
    --scheduler the bills are made in partitions of customers on Dask workers (which read
    the store) and issued here."""
    from datetime import UTC, datetime

    from openmeg.core.errors import OpenMegError
    from openmeg.core.partitions import cluster, shared_store_url
    from openmeg.provider.billing_partitions import run_billing_partitioned
    from openmeg.provider.billing_run import run_billing

    check(workers, scheduler)
    the_site = load_site_or_exit(site)
    known = [c.id for c in the_site.customers]
    unknown = [c for c in customer if c not in known]
    if unknown:
        shown = ", ".join(known[:20]) + (f" and {len(known) - 20} more" if len(known) > 20 else "")
        err_console.print(
            f"error: no customer {', '.join(map(repr, unknown))} in the site (customers: {shown})",
            markup=False,
        )
        raise typer.Exit(EXIT_BAD_INPUT)
    currency = str(getattr(the_site.site, "currency", None) or "USD")  # as the documents do
    writable_folder(out)
    db = open_store(store, the_site.site.id)
    wanted = set(customer) or None
    try:
        now = datetime.now(UTC)
        if workers is None and not scheduler:
            outcomes = run_billing(the_site, db, period, out, wanted, now=now)
        else:
            shared_store_url(db.url, writes=False)  # refused before a cluster starts
            with cluster(workers, scheduler or None) as client:
                outcomes = run_billing_partitioned(
                    the_site, db, period, out, wanted, now=now, client=client, size=partition_size
                )
    except ValueError as err:
        err_console.print(f"error: {err}", markup=False)
        raise typer.Exit(EXIT_BAD_INPUT) from err
    except OpenMegError as err:
        err_console.print(f"error: {err}", markup=False)
        raise typer.Exit(1) from err
    finally:
        db.close()
    failed = 0
    for o in outcomes:
        if o.issued is None:
            failed += 1
            err_console.print(f"{o.customer}: not billed: {o.problem}", markup=False)
            continue
        i = o.issued
        if o.outcome == "revised" and i.difference is not None:
            done = f"bill {i.number} revision {i.revision}: {i.kind} {currency} {i.difference:,.2f}"
        elif o.outcome == "unchanged":
            done = f"bill {i.number} unchanged, nothing issued"
        else:
            done = f"bill {i.number} issued"
        n = len(i.bill.lines)
        lines = f"{n} line" if n == 1 else f"{n} lines"
        print(f"{o.customer}: {currency} {i.bill.total:,.2f} ({lines}), {done}")
        if o.follow_up:
            err_console.print(f"{o.customer}: {o.follow_up}", markup=False)
    if not outcomes:
        err_console.print(
            "nobody to bill: no customer with a tariff and a meter"
            + (f" among {', '.join(customer)}" if customer else ""),
            markup=False,
        )
    if failed or not outcomes:
        raise typer.Exit(1)


def writable_folder(out: Path) -> None:
    """Exit 2 unless ``out`` is a folder this process can write bills into, or one it can
    make (its nearest existing parent a folder it can write): checked before anything is
    issued, and nothing made, so no bill is issued that could not be written."""
    import os

    there = out.absolute()
    while not there.exists():
        there = there.parent
    if not there.is_dir():
        why = f"{there} is not a folder"
    elif not os.access(there, os.W_OK | os.X_OK):
        why = f"{there} is not writable"
    else:
        return
    fail(
        f"--out {out}: cannot write bills there ({why}); give a folder you can write to; "
        "nothing issued"
    )


def basic_charge_cmd(
    building: str = typer.Option(..., help="building id"),
    month: str = typer.Option(..., help="month, YYYY-MM (local time)"),
    site: str = SITE,
    store: str = STORE,
    share_weight: float = typer.Option(0.5, min=0.0, max=1.0, help="part shared by ownership"),
    out: Path = typer.Option(Path("out/basic-charge"), help="folder for the owners' statements"),
) -> None:
    """Share an aggregate building's basic charge among its owners; a statement for each."""
    from openmeg.provider.basic_charge_run import issue_basic_charge

    the_site = load_site_or_exit(site)
    db = open_store(store, the_site.site.id)
    try:
        issue = issue_basic_charge(the_site, db, building, month, out, share_weight=share_weight)
    except ValueError as err:
        err_console.print(f"error: {err}", markup=False)
        raise typer.Exit(EXIT_BAD_INPUT) from err
    finally:
        db.close()
    for s in issue.statements:
        flag = f"  ({s.estimated_intervals} estimated intervals)" if s.estimated_intervals else ""
        print(
            f"{s.owner}: peak {s.peak_kw:.2f} kW, {s.days_present}/{s.days_in_month} days, "
            f"{issue.currency} {s.amount:,.2f}{flag}"
        )
    print(f"total: {issue.currency} {issue.total_cents / 100:,.2f}")
