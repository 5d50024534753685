"""The live state of a radial network for the single-line diagram: what each bus injects, what
each branch carries, and which buses are energised.

Pure functions over plain data (no pandapower, no I/O). Powers are in kW with openmeg's one
sign convention (``openmeg.core.units``): into the MEG bus positive.

- A bus injects what its devices inject. A device on the wire says its own power (``p_kw``).
  Devices that are not on the wire (loads, EV chargers, shiftable loads) are measured only by
  their meter: what a meter measures of its own devices (its import less its sub-meters')
  minus what its wired devices say is what its unwired devices draw. One unwired device behind
  a meter gets that power as its own; several share it as the meter's ``loads`` (it is put on
  their bus, split evenly when they sit on different buses).
- A branch (line, transformer, coupler) of a radial network carries the sum of everything
  beyond it, seen from the source of its energised part: losses are neglected (a few percent
  on a LV feeder), and so is the mismatch between readings taken at slightly different times,
  which lands at the source. A branch whose switch is open, or that is dark, carries nothing.
- Energised is what a source reaches over closed switches: the PCC bus while the utility is
  there and the PCC switch is closed, and the bus of every connected grid-forming unit while the
  MEG is not blacked out. An energised part without the utility is an island.
- A meshed part (a tie closed with its feeder's switches) has no radial flow: the branches
  closing a loop are given no flow (``None``) and the part is marked meshed.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

Live = Mapping[str, Mapping[str, float]]
"""device -> point name -> latest value (the process image the API serves)."""


@dataclass(frozen=True, kw_only=True)
class Branch:
    """Something that conducts between two buses: a line, a transformer or a bus coupler;
    ``switch`` names the switch that opens it (``None``: it always conducts)."""

    id: str
    from_bus: str
    to_bus: str
    switch: str | None = None


@dataclass(frozen=True, kw_only=True)
class Topology:
    buses: tuple[str, ...]
    branches: tuple[Branch, ...]
    pcc_bus: str


@dataclass(frozen=True, kw_only=True)
class MeterSpec:
    id: str
    devices: tuple[str, ...]
    parent: str | None = None


@dataclass(frozen=True, kw_only=True)
class Injections:
    bus_kw: dict[str, float]
    """bus -> what its devices put into it [kW]."""
    device_kw: dict[str, float]
    """device -> its power [kW]: said on the wire, or its meter's share when alone behind it."""
    meter_loads_kw: dict[str, float]
    """meter -> what its several unwired devices draw together [kW, into the bus positive]."""


@dataclass(frozen=True, kw_only=True)
class NetworkState:
    energised: frozenset[str]
    """Buses a source reaches."""
    islands: tuple[frozenset[str], ...]
    """Energised parts the utility does not reach."""
    flow_kw: dict[str, float | None]
    """branch -> power from its ``from_bus`` to its ``to_bus`` [kW] (negative: the other way);
    ``None`` where a loop gives no radial flow."""
    meshed: bool = False
    sources: tuple[str, ...] = field(default=())
    """The buses the energised parts are fed from (the PCC bus first when grid-connected)."""


def _value(live: Live, device: str, name: str) -> float | None:
    v = live.get(device, {}).get(name)
    if v is None or v != v:  # missing or NaN
        return None
    return float(v)


def injections(
    device_bus: Mapping[str, str], meters: Sequence[MeterSpec], live: Live
) -> Injections:
    """Each bus's injection from the devices' own powers and their meters (see the module)."""
    bus_kw: dict[str, float] = {}
    device_kw: dict[str, float] = {}
    loads: dict[str, float] = {}

    def add(bus: str, kw: float) -> None:
        bus_kw[bus] = bus_kw.get(bus, 0.0) + kw

    for d, bus in device_bus.items():
        p = _value(live, d, "p_kw")
        if p is not None:
            device_kw[d] = p
            add(bus, p)
    children: dict[str, list[str]] = {}
    for m in meters:
        if m.parent is not None:
            children.setdefault(m.parent, []).append(m.id)
    for m in meters:
        imported = _value(live, m.id, "import_kw")
        if imported is None:
            continue
        for child in children.get(m.id, []):
            c = _value(live, child, "import_kw")
            if c is None:
                imported = None
                break
            imported -= c
        if imported is None:
            continue
        mine = [d for d in m.devices if d in device_bus]
        unwired = [d for d in mine if d not in device_kw]
        if not unwired:
            continue  # all its devices speak for themselves: the meter adds nothing
        residual = -imported - sum(device_kw[d] for d in mine if d in device_kw)
        if len(unwired) == 1:
            device_kw[unwired[0]] = residual
        else:
            loads[m.id] = residual
        for d in unwired:
            add(device_bus[d], residual / len(unwired))
    return Injections(bus_kw=bus_kw, device_kw=device_kw, meter_loads_kw=loads)


def _adjacency(
    topology: Topology, closed: Mapping[str, bool]
) -> dict[str, list[tuple[str, Branch]]]:
    adj: dict[str, list[tuple[str, Branch]]] = {b: [] for b in topology.buses}
    for br in topology.branches:
        if br.switch is not None and not closed.get(br.switch, False):
            continue
        adj.setdefault(br.from_bus, []).append((br.to_bus, br))
        adj.setdefault(br.to_bus, []).append((br.from_bus, br))
    return adj


def network_state(
    topology: Topology,
    bus_kw: Mapping[str, float],
    closed: Mapping[str, bool],
    *,
    grid_connected: bool,
    forming_buses: Iterable[str] = (),
) -> NetworkState:
    """Energised buses, islands and branch flows (see the module).

    ``closed``: switch -> closed (a switch it does not name is open); ``grid_connected``: the
    utility is there and the PCC switch is closed; ``forming_buses``: the buses of the
    grid-forming units that hold an island up (none in a blackout).
    """
    adj = _adjacency(topology, closed)
    roots = [
        b for b in ([topology.pcc_bus] if grid_connected else []) + list(forming_buses) if b in adj
    ]
    seen: set[str] = set()
    flow: dict[str, float | None] = {br.id: 0.0 for br in topology.branches}
    islands: list[frozenset[str]] = []
    sources: list[str] = []
    meshed = False
    for root in roots:
        if root in seen:
            continue
        sources.append(root)
        # a spanning tree from the source: parents first
        order = [root]
        parent: dict[str, tuple[str, Branch] | None] = {root: None}
        tree: set[str] = set()
        queue = deque([root])
        seen.add(root)
        while queue:
            bus = queue.popleft()
            for other, br in adj[bus]:
                if other not in parent:
                    parent[other] = (bus, br)
                    tree.add(br.id)
                    order.append(other)
                    seen.add(other)
                    queue.append(other)
        part = frozenset(order)
        loops = {
            br.id for b in order for _, br in adj[b] if br.id not in tree
        }  # closing a loop: no radial flow
        if loops:
            meshed = True
            for br_id in loops:
                flow[br_id] = None
        beyond = {b: bus_kw.get(b, 0.0) for b in order}
        for bus in reversed(order):  # leaves first
            up = parent[bus]
            if up is None:
                continue
            upper, br = up
            beyond[upper] += beyond[bus]
            # power from the upper bus into this one is what lies beyond it draws
            towards = -beyond[bus]
            flow[br.id] = towards if br.from_bus == upper else -towards
        if not (grid_connected and root == topology.pcc_bus):
            islands.append(part)
    return NetworkState(
        energised=frozenset(seen),
        islands=tuple(islands),
        flow_kw=flow,
        meshed=meshed,
        sources=tuple(sources),
    )
