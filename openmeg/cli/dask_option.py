"""The options by which ``openmeg vee run`` and ``openmeg bill`` spread their work over Dask
workers: ``--workers N`` (a ``distributed.LocalCluster`` of N processes, one thread each) or
``--scheduler ADDR`` (an existing cluster); with neither the work runs in this process."""

from __future__ import annotations

import typer

from openmeg.core.partitions import PARTITION

WORKERS = typer.Option(
    None, min=1, help="run on a local Dask cluster of this many worker processes"
)
SCHEDULER = typer.Option(
    "", help="run on the Dask cluster of this scheduler (e.g. tcp://10.0.0.5:8786)"
)
PARTITION_SIZE = typer.Option(
    PARTITION, min=1, help="meters (customers) per partition when running on workers"
)


def check(workers: int | None, scheduler: str) -> None:
    """Exit 2 when both ``--workers`` and ``--scheduler`` are given."""
    from openmeg.cli.common import fail

    if workers is not None and scheduler:
        fail("give --workers or --scheduler, not both")
