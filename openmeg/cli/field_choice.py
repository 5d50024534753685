"""Which field ``openmeg run`` operates: the simulated one it starts, or the site's own devices
at the addresses of the site file."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path

from openmeg.core.site import Site, is_shipped_demo
from openmeg.core.wiring import unaddressed


class FieldSource(StrEnum):
    """``--field``: ``auto``, ``sim`` or ``site``."""

    auto = "auto"
    sim = "sim"
    site = "site"


def choose_field(site: Site, path: Path, wanted: FieldSource) -> FieldSource:
    """``sim`` or ``site`` for ``--field wanted``: ``auto`` is ``site`` when every device on the
    wire has an address in the site file at ``path`` and the file is not a shipped demo, else
    ``sim``. ``ValueError`` saying what to add when ``site`` is asked for and addresses lack."""
    missing = unaddressed(site)
    if wanted is FieldSource.auto:
        real = not missing and not is_shipped_demo(path)
        return FieldSource.site if real else FieldSource.sim
    if wanted is FieldSource.site and missing:
        shown = ", ".join(missing[:5]) + (
            f" and {len(missing) - 5} more" if len(missing) > 5 else ""
        )
        raise ValueError(
            f"--field site: {path} gives no address for {shown}: add `address: {{host, port, "
            "unit}` to each (utility.transfer_switch_address for pcc), or start the simulated "
            "field with --field sim"
        )
    return wanted
