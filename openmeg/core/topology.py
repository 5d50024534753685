"""The site network as a graph of what conducts, for the field's protection and the platform's
fault location alike: buses joined by in-service lines whose switch (if any) is closed, by
transformers and by closed bus-bus switches; supplied is what the source (the external grid's
bus) reaches.

Switches are pandapower's (``net.switch``), named by the site file's ids; a switch position map
is ``switch index -> closed``, and a switch it does not name keeps the position the net has.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping
from typing import Any

import networkx as nx

Closed = Mapping[int, bool]
"""Switch index -> closed."""


def source_bus(net: Any) -> int:
    """The bus the network is supplied from (its external grid)."""
    return int(net.ext_grid.bus.iloc[0])


def switch_of_line(net: Any) -> dict[int, int]:
    """Line index -> index of the switch on it."""
    sw = net.switch[net.switch.et == "l"]
    return {int(line): int(i) for i, line in zip(sw.index, sw.element, strict=True)}


def switch_index(net: Any) -> dict[str, int]:
    """Switch name (the site file's id) -> switch index."""
    return {str(n): int(i) for i, n in zip(net.switch.index, net.switch["name"], strict=True)}


def line_index(net: Any) -> dict[str, int]:
    """Line name -> line index."""
    return {str(n): int(i) for i, n in zip(net.line.index, net.line["name"], strict=True)}


def normal_state(net: Any) -> dict[int, bool]:
    """Switch index -> closed, as the site file leaves them (ties open)."""
    return {int(i): bool(c) for i, c in zip(net.switch.index, net.switch.closed, strict=True)}


def is_breaker(net: Any, switch: int) -> bool:
    return str(net.switch.at[switch, "type"]) == "CB"


def graph(net: Any, closed: Closed, *, without_line: int | None = None) -> nx.MultiGraph:
    """What conducts with the switches at ``closed`` (less the line ``without_line``)."""
    g = nx.MultiGraph()
    g.add_nodes_from(int(b) for b in net.bus.index)
    on_line = switch_of_line(net)
    for i, row in net.line.iterrows():
        switch = on_line.get(int(i))
        if int(i) == without_line or not row.in_service:
            continue
        if switch is None or closed.get(switch, bool(net.switch.at[switch, "closed"])):
            g.add_edge(int(row.from_bus), int(row.to_bus), key=("line", int(i)))
    for i, row in net.trafo.iterrows():
        g.add_edge(int(row.hv_bus), int(row.lv_bus), key=("trafo", int(i)))
    for i, row in net.switch[net.switch.et == "b"].iterrows():
        if closed.get(int(i), bool(row.closed)):
            g.add_edge(int(row.bus), int(row.element), key=("switch", int(i)))
    return g


def energised(net: Any, closed: Closed) -> set[int]:
    """The buses the source supplies with the switches at ``closed``."""
    return set(nx.node_connected_component(graph(net, closed), source_bus(net)))


def fault_path(net: Any, closed: Closed, line: int) -> list[int]:
    """The closed switches that fault current into ``line`` passes, from the source to the
    fault, in order; ``[]`` when the line is not supplied (no current flows into it).

    The current comes in at the supplied end nearer the source; the line's own switch carries
    it when it is closed and sits at that end.
    """
    g = graph(net, closed, without_line=line)
    source = source_bus(net)
    supplied = nx.node_connected_component(g, source)
    ends = [int(net.line.at[line, "from_bus"]), int(net.line.at[line, "to_bus"])]
    paths = [nx.shortest_path(g, source, end) for end in ends if end in supplied]
    if not paths:
        return []
    path = min(paths, key=len)
    on_line = switch_of_line(net)
    out = []
    for a, b in itertools.pairwise(path):
        for key in g.get_edge_data(a, b):
            if key[0] == "line" and key[1] in on_line:
                out.append(on_line[key[1]])
    own = on_line.get(line)
    if (
        own is not None
        and closed.get(own, bool(net.switch.at[own, "closed"]))
        and int(net.switch.at[own, "bus"]) == path[-1]
    ):
        out.append(own)
    return out


def protecting(net: Any, path: list[int]) -> int:
    """The switch that clears a fault seen along ``path`` (source first): the breaker nearest
    the fault, else (no breaker on the way) the switch nearest the fault, standing for the
    protection upstream that the site file does not name."""
    breakers = [s for s in path if is_breaker(net, s)]
    return (breakers or path)[-1]
