"""The site network: a pandapower net from its catalogue name or a pandapower JSON file."""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

NETWORK_CATALOGUE = ("cigre_lv",)


@cache
def _catalogue_net(name: str) -> Any:
    import pandapower.networks as pn

    if name == "cigre_lv":
        return pn.create_cigre_network_lv()
    raise ValueError(f"unknown network {name!r}: accepted {', '.join(NETWORK_CATALOGUE)}")


def load_network(name: str | None, file: Path | None) -> Any:
    """A fresh copy of the pandapower net named ``name`` or stored in ``file``."""
    import copy

    if file is not None:
        import pandapower as pp

        return pp.from_json(str(file))
    if name is None:
        raise ValueError("give a network name or file")
    return copy.deepcopy(_catalogue_net(name))


def bus_names(net: Any) -> list[str]:
    return [str(n) for n in net.bus["name"]]
