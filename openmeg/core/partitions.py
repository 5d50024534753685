"""The same pure work over partitions of meters or customers, in process or on a Dask cluster.

``cluster(workers, scheduler)`` gives a ``distributed.Client``: on a ``LocalCluster`` of
``workers`` processes (one thread each, on 127.0.0.1, its dashboard on a free port), or on
the existing cluster at ``scheduler``; with neither it gives ``None`` and ``run_partitions``
runs in this process. The partition functions are module-level functions whose arguments
pickle (a store URL rather than a ``Store``), so a worker opens its own connection to the
store.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from sqlalchemy.engine import make_url

from openmeg.core.errors import OpenMegError, StoreError

if TYPE_CHECKING:
    from distributed import Client

T = TypeVar("T")
R = TypeVar("R")

PARTITION = 2000
"""Meters (or customers) per partition by default."""


def chunks(items: Sequence[T], size: int = PARTITION) -> list[list[T]]:
    """``items`` in partitions of at most ``size``, in order."""
    if size < 1:
        raise ValueError(f"a partition holds at least one item, not {size}")
    return [list(items[i : i + size]) for i in range(0, len(items), size)]


class ClusterError(OpenMegError):
    """The Dask cluster could not be started or reached."""


@contextmanager
def cluster(
    workers: int | None = None, scheduler: str | None = None, *, timeout: float = 10.0
) -> Iterator[Client | None]:
    """A client on a new ``LocalCluster`` of ``workers`` processes (``threads_per_worker=1``)
    or on the cluster at ``scheduler`` (``tcp://host:8786``, reached within ``timeout``
    seconds); ``None`` (work in process) when neither is given. The local cluster is closed on
    the way out. ``ClusterError`` saying what to do when there is no cluster to work on."""
    if workers is not None and scheduler:
        raise ValueError("give --workers or --scheduler, not both")
    if workers is None and not scheduler:
        yield None
        return
    if workers is not None and workers < 1:
        raise ValueError(f"--workers must be at least 1, not {workers}")
    from distributed import Client, LocalCluster

    if scheduler:
        try:
            remote = Client(scheduler, timeout=timeout)  # type: ignore[no-untyped-call]
        except (OSError, TimeoutError) as err:
            raise ClusterError(
                f"cannot reach the Dask scheduler at {scheduler}: {err}; start it (dask "
                "scheduler, then dask worker on each machine) or give --workers N instead"
            ) from err
        with remote:
            yield remote
        return
    try:
        local = LocalCluster(  # type: ignore[no-untyped-call]
            n_workers=workers,
            threads_per_worker=1,
            processes=True,
            host="127.0.0.1",
            dashboard_address="127.0.0.1:0",
        )
    except (OSError, RuntimeError, TimeoutError) as err:
        raise ClusterError(
            f"cannot start a local Dask cluster of {workers} workers: {err}; run without --workers"
        ) from err
    with local, Client(local) as client:  # type: ignore[no-untyped-call]
        yield client


def run_partitions(
    client: Client | None,
    work: Callable[..., R],
    parts: Sequence[Any],
    /,
    **shared: Any,
) -> list[R]:
    """``[work(part, **shared) for part in parts]``, in order: on the cluster's workers when
    there is a client (an error in a worker is raised here), in this process otherwise."""
    if client is None:
        return [work(part, **shared) for part in parts]
    # each shared value goes to every worker once, not once a task; unhashed keys, so that
    # a value sent again is not lost with the release of the last run's copy
    sent = {
        k: client.scatter([v], broadcast=True, hash=False)[0]  # type: ignore[no-untyped-call]
        for k, v in shared.items()
    }
    futures = client.map(work, list(parts), pure=False, **sent)
    return list(client.gather(futures))  # type: ignore[no-untyped-call]


def shared_store_url(url: str, *, writes: bool) -> str:
    """``url``, checked for worker processes: an in-memory SQLite store is never shared, and a
    SQLite file only for reading (``writes=False``); ``StoreError`` saying what to do."""
    u = make_url(url)
    if u.get_backend_name() != "sqlite":
        return url
    if u.database in (None, "", ":memory:"):
        raise StoreError(
            "an in-memory SQLite store cannot be shared with worker processes: give a "
            "PostgreSQL store (--store postgresql+psycopg://...) or run without "
            "--workers/--scheduler"
        )
    if writes:
        raise StoreError(
            f"the SQLite file {u.database} cannot take writes from several worker processes: "
            "give a PostgreSQL store (--store postgresql+psycopg://...) or run without "
            "--workers/--scheduler"
        )
    # a relative file is found from any worker's working directory
    return u.set(database=str(Path(u.database).resolve())).render_as_string(hide_password=False)
