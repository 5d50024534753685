"""The site's network as the operator's single-line diagram shows it: buses, lines,
transformers, couplers, the PCC and its transfer switch, the line switches and ties, meters and
devices (with names people read), and where each is drawn.

Built once from the site file and its pandapower net (``openmeg.core.site.network_of``); pure
over those two. The layout is a left-to-right tree from the utility: each bus is a short
vertical bar, lines leave it to the right, the devices at a bus are listed in a panel under its
bar, grouped by the meter that measures them. A child's subtree takes the rows below its elder
siblings', so nothing overlaps; the tie lines, which close no branch of the tree, are drawn
around it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from openmeg.core.site import Site
from openmeg.operation.line_flows import Branch, MeterSpec, Topology

KIND_WORD = {
    "pv": "PV",
    "wind": "Wind",
    "chp": "CHP",
    "fuel_cell": "Fuel cell",
    "battery": "Battery",
    "heat_storage": "Heat store",
    "load": "Load",
    "shiftable_load": "Shiftable load",
    "ev_charger": "EV charger",
    "heat_load": "Heat load",
    "sensor": "Sensor",
}
BAR_H = 26.0  # a bus bar
ROW_H = 14.0  # a row of a device panel
LINK_W = 62.0  # a line between two buses, room for its flow label
CHAR_W = 5.3  # an average character at the panel's font size
PANEL_PAD = 6.0
GUTTER = 6.0  # left of a panel's rows: where heat pipes run
VALUE_CHARS = {  # the widest value the diagram shows in a device's row, by kind
    "battery": 27,  # "discharging 150.0 kW · 62 %"
    "heat_storage": 31,  # "62 % · 372 kWh · demand 12.3 kW"
    "chp": 26,  # "CHP 50.0 kW · heat 83.3 kW"
    "sensor": 20,  # "31.1 °C · 0.6 mm/s"
    "heat_load": 14,  # "heat from hs1"
    "load": 16,
    "shiftable_load": 26,  # "shiftable load (in loads)"
    "ev_charger": 22,  # "EV charger (in loads)"
}
UNWIRED = frozenset({"load", "shiftable_load", "ev_charger"})
UTILITY_H = 84.0  # the utility, the PCC and its switch, above the PCC bus
MARGIN = 20.0


@dataclass(frozen=True, kw_only=True)
class BusV:
    name: str
    vn_kv: float
    x: float
    y: float
    geo: tuple[float, float] | None = None


@dataclass(frozen=True, kw_only=True)
class LineV:
    name: str
    from_bus: str
    to_bus: str
    length_km: float
    kind: str  # "line" | "tie"
    switch: str | None = None


@dataclass(frozen=True, kw_only=True)
class TransformerV:
    name: str
    hv_bus: str
    lv_bus: str
    sn_kva: float


@dataclass(frozen=True, kw_only=True)
class CouplerV:
    name: str
    from_bus: str
    to_bus: str
    closed: bool


@dataclass(frozen=True, kw_only=True)
class SwitchV:
    id: str
    kind: str  # "transfer" | "breaker" | "sectionalizer" | "tie"
    line: str | None
    bus: str
    normally_closed: bool
    commandable: bool
    """It has an address on the wire and a ``switch_command`` point."""


@dataclass(frozen=True, kw_only=True)
class RowV:
    """A row of a bus's device panel: a meter's header or a device."""

    kind: str  # "meter" | "device"
    id: str
    x: float
    y: float
    depth: int


@dataclass(frozen=True, kw_only=True)
class PanelV:
    bus: str
    x: float
    y: float
    width: float
    height: float
    rows: tuple[RowV, ...]


@dataclass(frozen=True, kw_only=True)
class MeterV:
    id: str
    customer: str
    customer_name: str
    parent: str | None
    devices: tuple[str, ...]
    bus: str | None


@dataclass(frozen=True, kw_only=True)
class DeviceV:
    id: str
    name: str
    kind: str
    bus: str
    owner: str
    meter: str | None
    grid_forming: bool = False
    capacity_kwh: float | None = None
    eta_el: float | None = None
    eta_th: float | None = None
    heat_storage: str | None = None


@dataclass(frozen=True, kw_only=True)
class NetworkView:
    pcc_bus: str
    transfer_switch: str
    buses: tuple[BusV, ...]
    lines: tuple[LineV, ...]
    transformers: tuple[TransformerV, ...]
    couplers: tuple[CouplerV, ...]
    switches: tuple[SwitchV, ...]
    meters: tuple[MeterV, ...]
    devices: tuple[DeviceV, ...]
    panels: tuple[PanelV, ...]
    width: float
    height: float
    topology: Topology = field(repr=False)
    meter_specs: tuple[MeterSpec, ...] = field(repr=False, default=())


def device_name(d: Any, customers: dict[str, str], names: dict[str, str]) -> str:
    """The site file's name; else the kind and the owner's name ("PV Home 01"), a load by its
    owner's name alone ("Home 01": a premises' load is what people call the premises)."""
    if getattr(d, "name", ""):
        return str(d.name)
    if d.kind == "load" and d.owner in customers:
        return customers[d.owner]
    if d.kind == "sensor" and getattr(d, "watches", None) in names:
        return f"Sensor {names[d.watches]}"
    owner = customers.get(d.owner, "community" if d.owner == "community" else d.owner)
    return f"{KIND_WORD.get(d.kind, d.kind)} {owner}"


def _geo(raw: object) -> tuple[float, float] | None:
    if isinstance(raw, str) and '"coordinates"' in raw:
        import json

        try:
            x, y = json.loads(raw)["coordinates"][:2]
            return float(x), float(y)
        except (ValueError, KeyError, TypeError):
            return None
    return None


def network_view(site: Site, net: Any) -> NetworkView:
    """The whole network of ``site`` (its pandapower net ``net``, with the site's switches and
    ties added) as the diagram draws it."""
    name_of = {int(i): str(n) for i, n in zip(net.bus.index, net.bus["name"], strict=True)}
    customers = {c.id: c.name for c in site.customers}
    names: dict[str, str] = {}
    for d in site.devices:  # named devices first: a sensor is named after what it watches
        if d.name:
            names[d.id] = d.name
    for d in site.devices:
        names[d.id] = device_name(d, customers, names)
    # two devices named alike are told apart by their ids
    counts: dict[str, int] = {}
    for n in names.values():
        counts[n] = counts.get(n, 0) + 1
    names = {i: (f"{n} ({i})" if counts[n] > 1 else n) for i, n in names.items()}

    meter_of: dict[str, str] = {}
    for m in site.meters:
        for dev in m.devices:
            meter_of[dev] = m.id
    devices = tuple(
        DeviceV(
            id=d.id,
            name=names[d.id],
            kind=d.kind,
            bus=d.bus,
            owner=d.owner,
            meter=meter_of.get(d.id),
            grid_forming=bool(getattr(d, "grid_forming", False)),
            capacity_kwh=getattr(d, "capacity_kwh", None),
            eta_el=getattr(d, "eta_el", None),
            eta_th=getattr(d, "eta_th", None),
            heat_storage=getattr(d, "heat_storage", None),
        )
        for d in site.devices
    )
    bus_of_device = {d.id: d.bus for d in devices}
    meters = tuple(
        MeterV(
            id=m.id,
            customer=m.customer,
            customer_name=customers.get(m.customer, m.customer),
            parent=m.parent,
            devices=tuple(m.devices),
            bus=next((bus_of_device[d] for d in m.devices if d in bus_of_device), None),
        )
        for m in site.meters
    )

    switch_at_line: dict[int, str] = {}
    for _, row in net.switch[net.switch.et == "l"].iterrows():
        switch_at_line[int(row.element)] = str(row["name"])
    tie_ids = {t.id for t in site.network.ties}
    lines = tuple(
        LineV(
            name=str(row["name"]),
            from_bus=name_of[int(row.from_bus)],
            to_bus=name_of[int(row.to_bus)],
            length_km=float(row.length_km),
            kind="tie" if switch_at_line.get(int(i)) in tie_ids else "line",
            switch=switch_at_line.get(int(i)),
        )
        for i, row in net.line.iterrows()
        if bool(row.in_service)
    )
    transformers = tuple(
        TransformerV(
            name=str(row["name"]),
            hv_bus=name_of[int(row.hv_bus)],
            lv_bus=name_of[int(row.lv_bus)],
            sn_kva=float(row.sn_mva) * 1000.0,
        )
        for _, row in net.trafo.iterrows()
        if bool(row.in_service)
    )
    couplers = tuple(
        CouplerV(
            name=str(row["name"]),
            from_bus=name_of[int(row.bus)],
            to_bus=name_of[int(row.element)],
            closed=bool(row.closed),
        )
        for _, row in net.switch[net.switch.et == "b"].iterrows()
    )
    addressed = {s.id for s in site.network.switches if s.address is not None}
    addressed |= {t.id for t in site.network.ties if t.address is not None}
    line_by_name = {ln.name: ln for ln in lines}
    switches: list[SwitchV] = [
        SwitchV(
            id="pcc",
            kind="transfer",
            line=None,
            bus=site.utility.pcc_bus,
            normally_closed=True,
            commandable=site.utility.transfer_switch_address is not None,
        )
    ]
    for s in site.network.switches:
        switches.append(
            SwitchV(
                id=s.id,
                kind=s.kind,
                line=s.line,
                bus=line_by_name[s.line].from_bus if s.line in line_by_name else "",
                normally_closed=True,
                commandable=s.id in addressed,
            )
        )
    for t in site.network.ties:
        switches.append(
            SwitchV(
                id=t.id,
                kind="tie",
                line=f"tie {t.id}",
                bus=t.to_bus,
                normally_closed=False,
                commandable=t.id in addressed,
            )
        )

    branches = [
        Branch(id=ln.name, from_bus=ln.from_bus, to_bus=ln.to_bus, switch=ln.switch) for ln in lines
    ]
    branches += [Branch(id=t.name, from_bus=t.hv_bus, to_bus=t.lv_bus) for t in transformers]
    branches += [
        Branch(id=c.name, from_bus=c.from_bus, to_bus=c.to_bus) for c in couplers if c.closed
    ]
    topology = Topology(
        buses=tuple(name_of.values()), branches=tuple(branches), pcc_bus=site.utility.pcc_bus
    )
    geo = {name_of[int(i)]: _geo(g) for i, g in net.bus["geo"].items()} if "geo" in net.bus else {}
    vn = {name_of[int(i)]: float(v) for i, v in net.bus["vn_kv"].items()}
    tree = [b for b in branches if not any(ln.name == b.id and ln.kind == "tie" for ln in lines)]
    return _laid_out(
        buses=list(name_of.values()),
        tree=tree,
        root=site.utility.pcc_bus,
        meters=meters,
        devices=devices,
        vn=vn,
        geo=geo,
        base=NetworkView(
            pcc_bus=site.utility.pcc_bus,
            transfer_switch=site.utility.transfer_switch,
            buses=(),
            lines=lines,
            transformers=transformers,
            couplers=couplers,
            switches=tuple(switches),
            meters=meters,
            devices=devices,
            panels=(),
            width=0.0,
            height=0.0,
            topology=topology,
            meter_specs=tuple(
                MeterSpec(id=m.id, devices=m.devices, parent=m.parent) for m in meters
            ),
        ),
    )


def _panel_rows(bus: str, meters: Iterable[MeterV], devices: Iterable[DeviceV]) -> list[RowV]:
    """The rows of a bus's panel (positions filled in later): each meter measuring devices at
    the bus with those devices, sub-meters under their main meter, then the unmetered ones."""
    here = [d for d in devices if d.bus == bus]
    ids = {d.id for d in here}
    meters = list(meters)
    rows: list[RowV] = []

    def meter_rows(m: MeterV, depth: int) -> None:
        mine = [d for d in m.devices if d in ids]
        subs = [s for s in meters if s.parent == m.id and _measures_at(s, ids, meters)]
        rows.append(RowV(kind="meter", id=m.id, x=0.0, y=0.0, depth=depth))
        rows.extend(RowV(kind="device", id=d, x=0.0, y=0.0, depth=depth + 1) for d in mine)
        for s in subs:
            meter_rows(s, depth + 1)

    for m in meters:
        if m.parent is None and _measures_at(m, ids, meters):
            meter_rows(m, 0)
    metered = {d for m in meters for d in m.devices}
    rows.extend(
        RowV(kind="device", id=d.id, x=0.0, y=0.0, depth=0) for d in here if d.id not in metered
    )
    return rows


def _measures_at(m: MeterV, ids: set[str], meters: list[MeterV]) -> bool:
    return any(d in ids for d in m.devices) or any(
        _measures_at(s, ids, meters) for s in meters if s.parent == m.id
    )


def _laid_out(
    *,
    buses: list[str],
    tree: list[Branch],
    root: str,
    meters: tuple[MeterV, ...],
    devices: tuple[DeviceV, ...],
    vn: dict[str, float],
    geo: dict[str, tuple[float, float] | None],
    base: NetworkView,
    utility: bool = True,
) -> NetworkView:
    from dataclasses import replace

    children: dict[str, list[str]] = {b: [] for b in buses}
    seen = {root}
    frontier = [root]
    adj: dict[str, list[str]] = {b: [] for b in buses}
    for br in tree:
        adj.setdefault(br.from_bus, []).append(br.to_bus)
        adj.setdefault(br.to_bus, []).append(br.from_bus)
    while frontier:  # breadth first from the PCC bus: the tree of the diagram
        nxt = []
        for b in frontier:
            for o in adj.get(b, []):
                if o not in seen:
                    seen.add(o)
                    children[b].append(o)
                    nxt.append(o)
        frontier = nxt
    roots = [root] + [b for b in buses if b not in seen]  # parts no branch reaches: apart

    names = {d.id: d.name for d in devices}
    rows = {b: _panel_rows(b, meters, devices) for b in buses}

    kinds = {d.id: d.kind for d in devices}
    meter_of = {m.id: m for m in meters}

    def text_len(r: RowV) -> int:
        if r.kind == "device":
            value = VALUE_CHARS.get(kinds[r.id], 17)
            return len(names.get(r.id, "")) + 2 * r.depth + value
        unwired = [d for d in meter_of[r.id].devices if kinds.get(d) in UNWIRED]
        value = 32 if len(unwired) > 1 else 16  # "import 16.5 kW · loads 16.5 kW"
        return len(r.id) + 2 * r.depth + 2 + value

    def panel_w(b: str) -> float:
        if not rows[b]:
            return 0.0
        return max(text_len(r) for r in rows[b]) * CHAR_W + 4 * PANEL_PAD + GUTTER

    def own_w(b: str) -> float:
        # the PCC bus's panel sits left of the bus, under the utility above it
        return 0.0 if b == root and utility else panel_w(b)

    def own_h(b: str) -> float:
        n = len(rows[b])
        return BAR_H + (n * ROW_H + 2 * PANEL_PAD + 8.0 if n else 0.0) + 14.0

    height: dict[str, float] = {}

    def measure(b: str) -> float:
        kids = sum(measure(c) for c in children[b])
        height[b] = max(own_h(b), kids)
        return height[b]

    pos: dict[str, tuple[float, float]] = {}
    panels: list[PanelV] = []

    def place(b: str, x: float, y: float) -> None:
        pos[b] = (x, y + BAR_H / 2 + 12.0)  # the bar's centre; its label above it
        n = len(rows[b])
        if n:
            w = panel_w(b)
            px = x - w + 8.0 if b == root and utility else x + 8.0
            py = y + BAR_H + 14.0
            placed = tuple(
                replace(
                    r,
                    x=px + PANEL_PAD + GUTTER + 12.0 * r.depth,
                    y=py + PANEL_PAD + (i + 0.8) * ROW_H,
                )
                for i, r in enumerate(rows[b])
            )
            panels.append(
                PanelV(
                    bus=b,
                    x=px,
                    y=py,
                    width=w,
                    height=n * ROW_H + 2 * PANEL_PAD,
                    rows=placed,
                )
            )
        cx = x + own_w(b) + LINK_W
        cy = y
        for c in children[b]:
            place(c, cx, cy)
            cy += height[c]

    y0 = MARGIN + (UTILITY_H if utility else 0.0)
    for r in roots:
        measure(r)
    x_root = MARGIN + (max(60.0, panel_w(root) - 8.0) if utility else 0.0)
    for r in roots:
        place(r, x_root if r == root else MARGIN, y0)
        y0 += height[r]
    right = max([x + 40.0 for x, _ in pos.values()] + [p.x + p.width for p in panels] + [0.0])
    return replace(
        base,
        buses=tuple(
            BusV(name=b, vn_kv=vn.get(b, 0.0), x=pos[b][0], y=pos[b][1], geo=geo.get(b))
            for b in buses
        ),
        panels=tuple(panels),
        width=right + MARGIN + 40.0,  # room for the ties drawn round the right side
        height=y0 + MARGIN,
    )


def premises_view(view: NetworkView, devices: Iterable[str], meters: Iterable[str]) -> NetworkView:
    """What a prosumer sees of ``view``: the buses of their devices, their meters and devices;
    no lines, switches or other premises."""
    from dataclasses import replace

    keep_d = set(devices)
    keep_m = set(meters)
    own = tuple(d for d in view.devices if d.id in keep_d)
    own_m = tuple(
        replace(m, devices=tuple(d for d in m.devices if d in keep_d))
        for m in view.meters
        if m.id in keep_m
    )
    bus_names = sorted({d.bus for d in own}, key=[b.name for b in view.buses].index)
    vn = {b.name: b.vn_kv for b in view.buses}
    geo = {b.name: b.geo for b in view.buses}
    base = replace(
        view,
        lines=(),
        transformers=(),
        couplers=(),
        switches=(),
        meters=own_m,
        devices=own,
        topology=Topology(buses=tuple(bus_names), branches=(), pcc_bus=view.pcc_bus),
        meter_specs=tuple(s for s in view.meter_specs if s.id in keep_m),
    )
    if not bus_names:
        return replace(base, buses=(), panels=(), width=0.0, height=0.0)
    return _laid_out(
        buses=bus_names,
        tree=[],
        root=bus_names[0],
        meters=own_m,
        devices=own,
        vn=vn,
        geo=geo,
        base=base,
        utility=False,
    )
