"""A billing run with its bills made on Dask workers: the customers cut in partitions, each
worker reads its customers' validated arrays from the store and makes their bills
(``billing_run.make_bills``: ``billed_energies`` then ``bill_arrays`` per tariff); the caller
takes the bills back and issues them itself (numbers, one transaction), so the issued bills
are the same with and without workers.

Workers only read the store: PostgreSQL, or a SQLite file that every worker can open (a
``LocalCluster`` on this machine); an in-memory SQLite store is refused (``StoreError``).
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from openmeg.core.partitions import PARTITION, chunks, run_partitions, shared_store_url
from openmeg.core.site import Site
from openmeg.core.store import Store
from openmeg.provider.billing_run import BillOutcome, Made, make_bills, run_billing

if TYPE_CHECKING:
    from distributed import Client


def bills_partition(
    part: tuple[list[str], dict[str, Any]], *, url: str, site: Site, period: str
) -> tuple[Made, dict[str, str]]:
    """One worker's share: ``part`` = (customer ids, their carry-in); their bills, not
    issued, and the problems of those that could not be billed."""
    customers, carry_in = part
    store = Store(url)
    try:
        return make_bills(site, store, customers, period, carry_in)
    finally:
        store.close()


def run_billing_partitioned(
    site: Site,
    store: Store,
    period: str,
    out_dir: Path | None = None,
    customers: set[str] | None = None,
    *,
    now: datetime,
    client: Client | None,
    size: int = PARTITION,
) -> list[BillOutcome]:
    """``run_billing`` with the bills made over partitions of ``size`` customers on the cluster
    of ``client`` (in process when ``None``); issued here, in one transaction."""
    url = store.url if client is None else shared_store_url(store.url, writes=False)

    def make(chosen: list[str], carry_in: dict[str, Any]) -> tuple[Made, dict[str, str]]:
        parts = [(p, {c: carry_in[c] for c in p if c in carry_in}) for p in chunks(chosen, size)]
        made: Made = {}
        problems: dict[str, str] = {}
        done = run_partitions(client, bills_partition, parts, url=url, site=site, period=period)
        for m, p in done:
            made.update(m)
            problems.update(p)
        return made, problems

    return run_billing(site, store, period, out_dir, customers, now=now, make=make)
