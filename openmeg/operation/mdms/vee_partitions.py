"""``vee_site`` over partitions of meters on Dask workers: each worker runs ``vee_channel``
(the same pure matrix VEE) on its meters, reading the raw arrays from the store and writing the
versions, flags and days' status of its meters in its own transaction.

The store must be one the workers can all write: PostgreSQL. A SQLite file is refused for
workers (``StoreError``: its single writer would serialise them, and a remote worker cannot see
the file); without a cluster ``vee_site`` runs in process as before, on any store.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime
from typing import TYPE_CHECKING

from openmeg.core.partitions import PARTITION, chunks, run_partitions, shared_store_url
from openmeg.core.site import Site
from openmeg.core.store import Store
from openmeg.operation.mdms.store import CHANNELS
from openmeg.operation.mdms.validated import ValidatedReadings
from openmeg.operation.mdms.vee import VeeConfig
from openmeg.operation.mdms.vee_run import ChannelVee, vee_channel

if TYPE_CHECKING:
    from distributed import Client


def vee_partition(
    part: tuple[str, list[str]],
    *,
    url: str,
    site_id: str,
    start: datetime,
    end: datetime,
    cfg: VeeConfig,
    now: datetime,
) -> list[ChannelVee]:
    """One worker's share: ``part`` = (channel, meters); ``vee_channel`` on them with the
    import channel active, as ``vee_site`` does; the outcomes of its meters in order."""
    channel, meters = part
    store = Store(url)
    try:
        v = ValidatedReadings(store, site_id)
        return vee_channel(v, meters, channel, start, end, cfg, active=channel == "import", now=now)
    finally:
        store.close()


def vee_site_partitioned(
    site: Site,
    url: str,
    start: datetime,
    end: datetime,
    *,
    now: datetime,
    client: Client | None,
    size: int = PARTITION,
    meters: Sequence[str] | None = None,
) -> list[ChannelVee]:
    """``vee_site`` with the meters cut in partitions of ``size`` and every (channel,
    partition) run on the cluster of ``client`` (in process when ``None``): the outcomes in
    ``vee_site``'s order (channel by channel, meters in the site's order), the store left as
    ``vee_site`` leaves it. ``StoreError`` for a SQLite store with a cluster."""
    if client is not None:
        shared_store_url(url, writes=True)
    cfg = VeeConfig(timezone=site.site.timezone, **site.vee.model_dump())
    names = list(meters) if meters is not None else [m.id for m in site.meters]
    parts = [(channel, p) for channel in CHANNELS for p in chunks(names, size)]
    done = run_partitions(
        client,
        vee_partition,
        parts,
        url=url,
        site_id=site.site.id,
        start=start,
        end=end,
        cfg=cfg,
        now=now,
    )
    every = [o for outcomes in done for o in outcomes]
    # the flags frame comes with a run over one meter only, as from ``vee_site``
    return every if len(names) == 1 else [replace(o, flags=None) for o in every]
