"""A VEE run over a whole site: every channel of every meter for one period."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime

from openmeg.core.site import Site
from openmeg.core.store import Store
from openmeg.operation.mdms.store import CHANNELS
from openmeg.operation.mdms.validated import ValidatedReadings
from openmeg.operation.mdms.vee import VeeConfig


@dataclass(frozen=True, kw_only=True)
class ChannelVee:
    """What VEE did to one meter channel, or why it could not estimate it (``problem``)."""

    meter: str
    channel: str
    new_versions: int = 0
    estimated: int = 0
    rules: tuple[tuple[str, int], ...] = ()
    """How many intervals each rule flagged, most flagged first."""
    problem: str = ""


def vee_site(site: Site, store: Store, start: datetime, end: datetime) -> Iterator[ChannelVee]:
    """Validate ``[start, end)`` of every meter channel of the site, estimate what must be
    (the import channel is the active one), store new versions; one outcome per channel as
    each is done."""
    validated = ValidatedReadings(store, site.site.id)
    cfg = VeeConfig(timezone=site.site.timezone, **site.vee.model_dump())
    for m in site.meters:
        for channel in CHANNELS:
            try:
                r = validated.run_vee(m.id, channel, start, end, cfg, active=channel == "import")
            except ValueError as err:
                yield ChannelVee(meter=m.id, channel=channel, problem=str(err))
                continue
            yield ChannelVee(
                meter=m.id,
                channel=channel,
                new_versions=r.new_versions,
                estimated=r.estimated,
                rules=tuple((str(k), int(n)) for k, n in r.flags.rule.value_counts().items()),
            )
