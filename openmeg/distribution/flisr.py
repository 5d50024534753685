"""Self-healing (Y.2071 R8, N3): fault location, isolation and service restoration (FLISR).

On a fault the feeder's breaker trips. The fault passage indicators of the switches between
the source and the fault locate the faulted section (the part of the network bounded by
switches, downstream of the deepest indicating switch); its bounding switches open; the breaker
recloses; dark healthy sections are restored through normally open ties, each tie closing only
after a power flow of the new configuration keeps every voltage and loading within limits.
The plan is pure: it reads a pandapower net and the bus injections, and returns the steps.
"""

from __future__ import annotations

import copy
import itertools
from dataclasses import dataclass, field
from typing import Any

import networkx as nx
import numpy as np
import numpy.typing as npt
import pandapower as pp

FloatArray = npt.NDArray[np.float64]
VM_MIN_PU = 0.90
VM_MAX_PU = 1.10
LOADING_MAX_PCT = 100.0


@dataclass(frozen=True, kw_only=True)
class TieCheck:
    """The power flow that decided whether a tie may close."""

    tie: str
    vm_min_pu: float
    vm_max_pu: float
    loading_max_pct: float
    ok: bool


@dataclass(frozen=True, kw_only=True)
class FlisrPlan:
    faulted_line: str
    breaker: str
    indicating: tuple[str, ...]
    section_lines: tuple[str, ...]
    section_buses: frozenset[int]
    opened: tuple[str, ...]
    closed: tuple[str, ...]
    checks: tuple[TieCheck, ...] = field(default=())
    dark_after_trip: frozenset[int] = frozenset()
    dark_after_restoration: frozenset[int] = frozenset()


def _source_bus(net: Any) -> int:
    return int(net.ext_grid.bus.iloc[0])


def _switch_of_line(net: Any) -> dict[int, int]:
    """Line index -> index of the switch on it."""
    sw = net.switch[net.switch.et == "l"]
    return {int(line): int(i) for i, line in zip(sw.index, sw.element, strict=True)}


def _graph(net: Any, closed: dict[int, bool]) -> nx.MultiGraph:
    """Buses joined by in-service lines whose switch (if any) is closed, and by trafos and
    bus-bus switches."""
    g = nx.MultiGraph()
    g.add_nodes_from(int(b) for b in net.bus.index)
    on_line = _switch_of_line(net)
    for i, row in net.line.iterrows():
        if row.in_service and closed.get(on_line.get(int(i), -1), True):
            g.add_edge(int(row.from_bus), int(row.to_bus), key=("line", int(i)))
    for i, row in net.trafo.iterrows():
        g.add_edge(int(row.hv_bus), int(row.lv_bus), key=("trafo", int(i)))
    for i, row in net.switch[net.switch.et == "b"].iterrows():
        if row.closed:
            g.add_edge(int(row.bus), int(row.element), key=("switch", int(i)))
    return g


def _energised(net: Any, closed: dict[int, bool]) -> set[int]:
    return set(nx.node_connected_component(_graph(net, closed), _source_bus(net)))


def normal_state(net: Any) -> dict[int, bool]:
    """Switch index -> closed, as the site file leaves them (ties open)."""
    return {int(i): bool(c) for i, c in zip(net.switch.index, net.switch.closed, strict=True)}


def plan_flisr(net: Any, faulted_line: str, p_mw: FloatArray, q_mvar: FloatArray) -> FlisrPlan:
    """The FLISR steps for a fault on ``faulted_line`` with the bus injections at that moment
    (MW and Mvar into each bus)."""
    line_idx = {str(n): int(i) for i, n in zip(net.line.index, net.line["name"], strict=True)}
    if faulted_line not in line_idx:
        raise KeyError(f"no line {faulted_line!r} in the network")
    f = line_idx[faulted_line]
    names = {int(i): str(n) for i, n in zip(net.switch.index, net.switch["name"], strict=True)}
    kinds = {int(i): str(t) for i, t in zip(net.switch.index, net.switch["type"], strict=True)}
    on_line = _switch_of_line(net)
    state = normal_state(net)
    source = _source_bus(net)
    g = _graph(net, state)
    fb, tb = int(net.line.at[f, "from_bus"]), int(net.line.at[f, "to_bus"])
    if not nx.has_path(g, source, fb):
        raise ValueError(f"{faulted_line} is not supplied in the normal state: nothing to locate")
    # fault passage indicators: every switched line on the path from the source to the fault
    path = nx.shortest_path(g, source, fb)
    far = tb if len(nx.shortest_path(g, source, tb)) > len(path) else fb
    path_lines = []
    for a, b in itertools.pairwise(path):
        for key in g.get_edge_data(a, b):
            if key[0] == "line":
                path_lines.append(key[1])
    path_lines.append(f)
    indicating = [on_line[ln] for ln in path_lines if ln in on_line and state[on_line[ln]]]
    if not indicating:
        raise ValueError(f"no switch between the source and {faulted_line}: cannot isolate")
    breakers = [s for s in indicating if kinds[s] == "CB"]
    breaker = breakers[0] if breakers else indicating[0]
    deepest = indicating[-1]
    # the section: what the deepest indicating switch feeds, up to the next switches
    without_switched = _graph(net, {s: False for s in on_line.values()})
    deep_line = int(net.switch.at[deepest, "element"])
    a, b = int(net.line.at[deep_line, "from_bus"]), int(net.line.at[deep_line, "to_bus"])
    downstream = (
        b if len(nx.shortest_path(g, source, b)) > len(nx.shortest_path(g, source, a)) else a
    )
    if deep_line == f:
        downstream = far
    section = set(nx.node_connected_component(without_switched, downstream))
    section_lines = [
        ln
        for ln in net.line.index
        if int(net.line.at[ln, "from_bus"]) in section
        and int(net.line.at[ln, "to_bus"]) in section
        and int(ln) not in on_line
    ]
    if f in on_line or f not in section_lines:
        section_lines.append(f)
    bounding = sorted(
        s
        for ln, s in on_line.items()
        if state[s]
        and (
            (int(net.line.at[ln, "from_bus"]) in section)
            != (int(net.line.at[ln, "to_bus"]) in section)
            or ln == f
        )
    )
    tripped = dict(state)
    tripped[breaker] = False
    dark_after_trip = frozenset(set(net.bus.index.astype(int)) - _energised(net, tripped))
    isolated = dict(state)
    for s in bounding:
        isolated[s] = False
    closed: list[str] = [names[breaker]] if breaker not in bounding else []
    checks: list[TieCheck] = []
    ties = [s for s, c in state.items() if not c and net.switch.at[s, "et"] == "l"]
    for tie in ties:
        dark = set(net.bus.index.astype(int)) - _energised(net, isolated) - section
        line = int(net.switch.at[tie, "element"])
        ends = {int(net.line.at[line, "from_bus"]), int(net.line.at[line, "to_bus"])}
        if not ends & dark:
            continue
        trial = dict(isolated)
        trial[tie] = True
        check = _check(net, trial, section, p_mw, q_mvar, names[tie])
        checks.append(check)
        if check.ok:
            isolated = trial
            closed.append(names[tie])
    dark_after = frozenset(set(net.bus.index.astype(int)) - _energised(net, isolated))
    return FlisrPlan(
        faulted_line=faulted_line,
        breaker=names[breaker],
        indicating=tuple(names[s] for s in indicating),
        section_lines=tuple(sorted(str(net.line.at[ln, "name"]) for ln in section_lines)),
        section_buses=frozenset(section),
        opened=tuple(names[s] for s in bounding),
        closed=tuple(closed),
        checks=tuple(checks),
        dark_after_trip=dark_after_trip,
        dark_after_restoration=dark_after,
    )


def _check(
    net: Any,
    closed: dict[int, bool],
    section: set[int],
    p_mw: FloatArray,
    q_mvar: FloatArray,
    tie: str,
) -> TieCheck:
    """A pandapower power flow of a configuration: voltages and loadings of what is supplied."""
    trial = copy.deepcopy(net)
    for s, c in closed.items():
        trial.switch.at[s, "closed"] = c
    trial.load.drop(trial.load.index, inplace=True)
    for bus in trial.bus.index:
        b = int(bus)
        if b in section or (p_mw[b] == 0 and q_mvar[b] == 0):
            continue
        pp.create_load(trial, bus=b, p_mw=-float(p_mw[b]), q_mvar=-float(q_mvar[b]))
    pp.runpp(trial)
    vm = trial.res_bus.vm_pu.to_numpy()
    vm = vm[~np.isnan(vm)]
    loading = np.concatenate(
        [trial.res_line.loading_percent.to_numpy(), trial.res_trafo.loading_percent.to_numpy()]
    )
    loading = loading[~np.isnan(loading)]
    vm_min, vm_max, load_max = float(vm.min()), float(vm.max()), float(loading.max())
    ok = vm_min >= VM_MIN_PU and vm_max <= VM_MAX_PU and load_max <= LOADING_MAX_PCT
    return TieCheck(tie=tie, vm_min_pu=vm_min, vm_max_pu=vm_max, loading_max_pct=load_max, ok=ok)
