"""One simulation run of a site: load it, build the plant, step it, summarise."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime

from openmeg.core.site import Site, network_of
from openmeg.sim.engine import Engine
from openmeg.sim.plant import build_plant

_STEP = re.compile(r"^(\d+(?:\.\d+)?)(s|min|h)$")


def parse_step_s(text: str) -> float:
    """``"1min"`` -> 60.0; accepts s, min and h."""
    m = _STEP.match(text.strip())
    if not m:
        raise ValueError(f"step {text!r} not understood: use e.g. 15s, 1min, 15min or 1h")
    value = float(m.group(1)) * {"s": 1, "min": 60, "h": 3600}[m.group(2)]
    if not 1 <= value <= 3600 or 86400 % value:
        raise ValueError(f"step {text!r} must divide a day and lie between 1s and 1h")
    return value


def make_engine(site: Site, *, start: datetime, days: float, step_s: float) -> Engine:
    """An engine for ``days`` of ``site`` from ``start`` (aware) at steps of ``step_s``."""
    if start.tzinfo is None:
        start = start.replace(tzinfo=UTC)
    n_steps = round(days * 86400 / step_s)
    if n_steps < 1:
        raise ValueError("simulate at least one step")
    net = network_of(site)
    return Engine(site, build_plant(site, net, start, n_steps, step_s), net)


def simulate(
    site: Site,
    *,
    start: datetime,
    days: float,
    step_s: float,
    progress: Callable[[int, int], None] | None = None,
) -> Engine:
    """Run the whole MEG in simulated time and return the finished engine."""
    engine = make_engine(site, start=start, days=days, step_s=step_s)
    total = engine.plant.n_steps
    engine.run(None if progress is None else (lambda k: progress(k, total)))
    return engine
