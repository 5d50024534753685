"""Self-healing (Y.2071 R8, N3): fault location, isolation and service restoration (FLISR).

On a fault the feeder's breaker trips. The fault passage indicators of the switches between
the source and the fault locate the faulted section (the part of the network bounded by
switches, downstream of the deepest indicating switch); its bounding switches open; the breaker
recloses; dark healthy sections are restored through normally open ties, each tie closing only
after a power flow of the new configuration keeps every voltage and loading within limits.

``plan_from_indicators`` plans from the switches whose indicators latched (as they come over
the wire), ``plan_flisr`` from a faulted line a study names; ``plan_return_to_normal`` gives the
switching back to the normal state after the repair. The plans are pure: they read a pandapower
net (its topology from ``openmeg.core.topology``, which the field's protection uses too), the
switch positions and the bus injections, and return the steps.
"""

from __future__ import annotations

import copy
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import networkx as nx
import numpy as np
import numpy.typing as npt
import pandapower as pp

from openmeg.core.topology import (
    energised,
    fault_path,
    graph,
    line_index,
    normal_state,
    protecting,
    source_bus,
    switch_index,
    switch_of_line,
)

FloatArray = npt.NDArray[np.float64]
VM_MIN_PU = 0.90
VM_MAX_PU = 1.10
LOADING_MAX_PCT = 100.0
Step = tuple[str, Literal["open", "close"]]
"""A switching step: the switch's id and what it does."""


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
    """Where the fault is (``faulted_line`` when a study said so, else ``None``), what the
    trip left dark, and the switching that isolates it and restores the rest."""

    faulted_line: str | None
    breaker: str
    indicating: tuple[str, ...]
    section_lines: tuple[str, ...]
    section_buses: frozenset[int]
    opened: tuple[str, ...]
    closed: tuple[str, ...]
    checks: tuple[TieCheck, ...] = field(default=())
    dark_after_trip: frozenset[int] = frozenset()
    dark_after_restoration: frozenset[int] = frozenset()

    @property
    def steps(self) -> tuple[Step, ...]:
        """The switching in order: the section's bounding switches open, then the breaker
        (unless it bounds the section) and the ties that passed their check close."""
        return tuple((s, "open") for s in self.opened) + tuple((s, "close") for s in self.closed)


def plan_flisr(net: Any, faulted_line: str, p_mw: FloatArray, q_mvar: FloatArray) -> FlisrPlan:
    """The FLISR steps for a fault on ``faulted_line`` in the normal state, with the bus
    injections at that moment (MW and Mvar into each bus): the indicators that latch are those
    of the switches the fault current passes (a study told where the fault is)."""
    lines = line_index(net)
    if faulted_line not in lines:
        raise KeyError(f"no line {faulted_line!r} in the network")
    state = normal_state(net)
    path = fault_path(net, state, lines[faulted_line])
    if not path:
        ends = {int(net.line.at[lines[faulted_line], e]) for e in ("from_bus", "to_bus")}
        if not ends & energised(net, state):
            raise ValueError(f"{faulted_line} is not supplied normally: nothing to locate")
        raise ValueError(f"no switch between the source and {faulted_line}: cannot isolate")
    names = {i: n for n, i in switch_index(net).items()}
    return plan_from_indicators(
        net, [names[s] for s in path], p_mw, q_mvar, faulted_line=faulted_line
    )


def plan_from_indicators(
    net: Any,
    indicating: Collection[str],
    p_mw: FloatArray,
    q_mvar: FloatArray,
    *,
    closed: Mapping[str, bool] | None = None,
    faulted_line: str | None = None,
) -> FlisrPlan:
    """The FLISR steps from the switches whose fault passage indicators latched.

    ``closed``: the switch positions now (by id; default the normal state); every indicating
    switch was closed when the fault current passed it, and the breaker among them tripped.
    The faulted section is what the indicating switch farthest from the source feeds, up to
    the next switches. ``faulted_line``, when known, is added to the section's lines.
    """
    index = switch_index(net)
    unknown = sorted(set(indicating) - set(index))
    if unknown:
        raise KeyError(f"no switch {', '.join(unknown)} in the network; switches: {sorted(index)}")
    if not indicating:
        raise ValueError("no fault passage indicator latched: nothing to locate")
    names = {i: n for n, i in index.items()}
    on_line = switch_of_line(net)
    state = normal_state(net)
    for name, c in (closed or {}).items():
        state[index[name]] = c
    for name in indicating:
        state[index[name]] = True  # the fault current passed it: it was closed
    source = source_bus(net)
    g = graph(net, state)
    reach = nx.single_source_shortest_path_length(g, source)

    def depth(s: int) -> int:
        return int(reach.get(int(net.switch.at[s, "bus"]), len(reach)))

    ind = sorted((index[n] for n in indicating), key=depth)
    breaker = protecting(net, ind)
    deep_line = int(net.switch.at[ind[-1], "element"])
    ends = [int(net.line.at[deep_line, e]) for e in ("from_bus", "to_bus")]
    downstream = max(ends, key=lambda b: reach.get(b, -1))
    without_switched = graph(net, {s: False for s in on_line.values()})
    section = set(nx.node_connected_component(without_switched, downstream))
    f = line_index(net).get(faulted_line) if faulted_line is not None else None
    section_lines = [
        int(ln)
        for ln in net.line.index
        if int(net.line.at[ln, "from_bus"]) in section
        and int(net.line.at[ln, "to_bus"]) in section
        and int(ln) not in on_line
    ]
    if f is not None and f not in section_lines:
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
    buses = set(net.bus.index.astype(int))
    tripped = dict(state)
    tripped[breaker] = False
    dark_after_trip = frozenset(buses - energised(net, tripped))
    isolated = dict(state)
    for s in bounding:
        isolated[s] = False
    closes: list[str] = [names[breaker]] if breaker not in bounding else []
    checks: list[TieCheck] = []
    ties = [s for s, c in state.items() if not c and net.switch.at[s, "et"] == "l"]
    for tie in ties:
        dark = buses - energised(net, isolated) - section
        line = int(net.switch.at[tie, "element"])
        if not {int(net.line.at[line, "from_bus"]), int(net.line.at[line, "to_bus"])} & dark:
            continue
        trial = dict(isolated)
        trial[tie] = True
        check = _check(net, trial, section, p_mw, q_mvar, names[tie])
        checks.append(check)
        if check.ok:
            isolated = trial
            closes.append(names[tie])
    return FlisrPlan(
        faulted_line=faulted_line,
        breaker=names[breaker],
        indicating=tuple(names[s] for s in ind),
        section_lines=tuple(sorted(str(net.line.at[ln, "name"]) for ln in section_lines)),
        section_buses=frozenset(section),
        opened=tuple(names[s] for s in bounding),
        closed=tuple(closes),
        checks=tuple(checks),
        dark_after_trip=dark_after_trip,
        dark_after_restoration=frozenset(buses - energised(net, isolated)),
    )


def plan_return_to_normal(net: Any, closed: Mapping[str, bool]) -> tuple[Step, ...]:
    """The switching that puts the network back to its normal state from the positions
    ``closed`` (by id), never closing a loop while a tie is still closed: the switches to close
    from the source outward, each while it joins a dark part to a supplied one; then the ties
    open; then the switches that would have closed a loop."""
    index = switch_index(net)
    names = {i: n for n, i in index.items()}
    normal = normal_state(net)
    state = normal_state(net)
    for name, c in closed.items():
        state[index[name]] = c
    reach = nx.single_source_shortest_path_length(graph(net, normal), source_bus(net))
    to_close = sorted(
        (s for s, c in normal.items() if c and not state[s]),
        key=lambda s: reach.get(int(net.switch.at[s, "bus"]), len(reach)),
    )
    to_open = sorted(s for s, c in normal.items() if not c and state[s])
    steps: list[Step] = []
    while to_close or to_open:
        supplied = energised(net, state)
        safe = [s for s in to_close if not _ends(net, s) <= supplied]
        if safe or not to_open:
            s = (safe or to_close)[0]
            to_close.remove(s)
            state[s] = True
            steps.append((names[s], "close"))
        else:
            for s in to_open:
                state[s] = False
                steps.append((names[s], "open"))
            to_open = []
    return tuple(steps)


def _ends(net: Any, switch: int) -> set[int]:
    """The buses at the two ends of a line switch's line."""
    line = int(net.switch.at[switch, "element"])
    return {int(net.line.at[line, "from_bus"]), int(net.line.at[line, "to_bus"])}


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
    try:
        pp.runpp(trial)
    except pp.LoadflowNotConverged:  # no operating point: the tie may not close
        nan = float("nan")
        return TieCheck(tie=tie, vm_min_pu=nan, vm_max_pu=nan, loading_max_pct=nan, ok=False)
    vm = trial.res_bus.vm_pu.to_numpy()
    vm = vm[~np.isnan(vm)]
    loading = np.concatenate(
        [trial.res_line.loading_percent.to_numpy(), trial.res_trafo.loading_percent.to_numpy()]
    )
    loading = loading[~np.isnan(loading)]
    vm_min, vm_max, load_max = float(vm.min()), float(vm.max()), float(loading.max())
    ok = vm_min >= VM_MIN_PU and vm_max <= VM_MAX_PU and load_max <= LOADING_MAX_PCT
    return TieCheck(tie=tie, vm_min_pu=vm_min, vm_max_pu=vm_max, loading_max_pct=load_max, ok=ok)
