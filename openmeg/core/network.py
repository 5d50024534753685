"""The site network: a pandapower net from its catalogue name or a pandapower JSON file."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
from dataclasses import dataclass
from functools import cache
from importlib import metadata
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


@dataclass(frozen=True, kw_only=True)
class Outline:
    """What a site file may name in a network: buses, lines, line types."""

    buses: frozenset[str]
    lines: frozenset[str]
    line_types: frozenset[str]


def _cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "openmeg" / "networks"


def network_outline(name: str | None, file: Path | None) -> Outline:
    """The names a network holds, read once and kept in the user's cache (keyed by the
    catalogue name and pandapower's version, or by the file's contents): checking a site file
    does not need pandapower loaded each time."""
    if file is not None:
        key = "file-" + hashlib.sha256(Path(file).read_bytes()).hexdigest()[:32]
    else:
        key = f"{name}-pandapower-{metadata.version('pandapower')}"
    cached = _cache_dir() / f"{key}.json"
    try:
        raw = json.loads(cached.read_text())
        return Outline(**{k: frozenset(v) for k, v in raw.items()})
    except (OSError, ValueError, TypeError):
        pass
    net = load_network(name, file)
    outline = Outline(
        buses=frozenset(bus_names(net)),
        lines=frozenset(str(n) for n in net.line["name"]),
        line_types=frozenset(net.std_types["line"]),
    )
    with contextlib.suppress(OSError):  # a cache that cannot be written is no error
        cached.parent.mkdir(parents=True, exist_ok=True)
        tmp = cached.with_suffix(".tmp")
        tmp.write_text(json.dumps({k: sorted(v) for k, v in outline.__dict__.items()}))
        tmp.replace(cached)
    return outline


def bus_names(net: Any) -> list[str]:
    return [str(n) for n in net.bus["name"]]


def add_switches_and_ties(net: Any, switches: Any, ties: Any) -> None:
    """Put the site's line switches (closed) and tie lines with an open switch into ``net``.

    Switches and ties are named by their ids (``net.switch.name``); a line switch sits at the
    line's ``from_bus`` end, a tie's switch at its ``to_bus`` end.
    """
    import pandapower as pp

    bus_of = {str(n): int(i) for i, n in zip(net.bus.index, net.bus["name"], strict=True)}
    line_of = {str(n): int(i) for i, n in zip(net.line.index, net.line["name"], strict=True)}
    for sw in switches:
        line = line_of[sw.line]
        pp.create_switch(
            net,
            bus=int(net.line.at[line, "from_bus"]),
            element=line,
            et="l",
            closed=True,
            type="CB" if sw.kind == "breaker" else "LBS",
            name=sw.id,
        )
    for tie in ties:
        line = pp.create_line(
            net,
            bus_of[tie.from_bus],
            bus_of[tie.to_bus],
            tie.length_km,
            tie.std_type,
            name=f"tie {tie.id}",
        )
        pp.create_switch(
            net, bus=bus_of[tie.to_bus], element=line, et="l", closed=False, type="LBS", name=tie.id
        )
