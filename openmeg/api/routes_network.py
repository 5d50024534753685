"""The site's network for the single-line diagram, and its live state: what each line carries
and which buses are energised (``openmeg.operation.line_flows``)."""

from __future__ import annotations

import threading
from datetime import datetime

from fastapi import APIRouter, Depends, HTTPException, Request
from pydantic import BaseModel, ConfigDict

from openmeg.api.auth import ERRORS, scope, services
from openmeg.api.context import ApiServices, Scope
from openmeg.core.site import Site, network_of
from openmeg.operation.line_flows import injections, network_state
from openmeg.operation.network_view import NetworkView, network_view, premises_view

router = APIRouter(prefix="/api/v1", responses=ERRORS)
MODES = ("grid", "island", "blackout")


class _Out(BaseModel):
    model_config = ConfigDict(extra="forbid", from_attributes=True)


class BusOut(_Out):
    name: str
    vn_kv: float
    x: float
    y: float
    """Where the diagram draws the bus (its layout, in SVG user units)."""
    geo: tuple[float, float] | None
    """The network file's coordinates of the bus, if it has any."""


class LineOut(_Out):
    name: str
    from_bus: str
    to_bus: str
    length_km: float
    kind: str
    """``line``, or ``tie`` (a normally open tie between feeders)."""
    switch: str | None


class TransformerOut(_Out):
    name: str
    hv_bus: str
    lv_bus: str
    sn_kva: float


class CouplerOut(_Out):
    name: str
    from_bus: str
    to_bus: str
    closed: bool


class SwitchOut(_Out):
    id: str
    kind: str
    """``transfer`` (the PCC's, device ``pcc``), ``breaker``, ``sectionalizer`` or ``tie``."""
    line: str | None
    bus: str
    normally_closed: bool
    commandable: bool
    """It is on the wire with a ``switch_command`` point (1 opens it, 2 closes it)."""


class MeterOut(_Out):
    id: str
    customer: str
    customer_name: str
    parent: str | None
    devices: list[str]
    bus: str | None


class DeviceOut(_Out):
    id: str
    name: str
    kind: str
    bus: str
    owner: str
    meter: str | None
    grid_forming: bool
    capacity_kwh: float | None
    eta_el: float | None
    eta_th: float | None
    heat_storage: str | None


class RowOut(_Out):
    kind: str
    id: str
    x: float
    y: float
    depth: int


class PanelOut(_Out):
    bus: str
    x: float
    y: float
    width: float
    height: float
    rows: list[RowOut]


class NetworkOut(_Out):
    pcc_bus: str
    transfer_switch: str
    buses: list[BusOut]
    lines: list[LineOut]
    transformers: list[TransformerOut]
    couplers: list[CouplerOut]
    switches: list[SwitchOut]
    meters: list[MeterOut]
    devices: list[DeviceOut]
    panels: list[PanelOut]
    """Where the diagram lists the devices of each bus, grouped by meter."""
    width: float
    height: float


class DeviceState(BaseModel):
    p_kw: float | None
    """Into the MEG bus positive; a load's from its meter when it is alone behind it."""
    energised: bool


class MeterState(BaseModel):
    import_kw: float | None
    loads_kw: float | None
    """What its several unwired devices draw together, into the bus positive."""


class NetworkStateOut(BaseModel):
    ts: datetime | None
    mode: str
    utility_available: bool
    grid_connected: bool
    """The utility is there and the PCC switch is closed."""
    switches: dict[str, bool]
    """switch -> closed (as the switch says; its normal position when it has said nothing)."""
    energised: list[str]
    islands: list[list[str]]
    """Energised parts the utility does not reach, each a list of its buses."""
    meshed: bool
    flows_kw: dict[str, float | None]
    """line, transformer or coupler -> power from its from (hv) bus to its to (lv) bus [kW];
    losses neglected; ``None`` where a closed loop gives no radial flow."""
    devices: dict[str, DeviceState]
    meters: dict[str, MeterState]


_views: dict[int, tuple[Site, NetworkView]] = {}
_lock = threading.Lock()


def site_view(site: Site) -> NetworkView:
    """The network view of ``site``, built once (its pandapower net is loaded for it)."""
    with _lock:
        held = _views.get(id(site))
        if held is None or held[0] is not site:
            held = (site, network_view(site, network_of(site)))
            _views[id(site)] = held
        return held[1]


def no_query(request: Request) -> None:
    if request.query_params:
        names = ", ".join(sorted(request.query_params.keys()))[:80]
        raise HTTPException(422, f"this takes no query parameters (got {names})")


def _whole(svc: ApiServices) -> NetworkView:
    try:
        return site_view(svc.site)
    except (OSError, ValueError) as err:
        raise HTTPException(409, f"the site's network cannot be loaded: {err}") from err


def _view_for(svc: ApiServices, seen: Scope) -> NetworkView:
    view = _whole(svc)
    if seen.everything:
        return view
    return premises_view(view, seen.devices, seen.meters)


@router.get("/network", response_model=NetworkOut, dependencies=[Depends(no_query)])
def network_get(svc: ApiServices = Depends(services), seen: Scope = Depends(scope)) -> NetworkOut:
    """The site's network as the platform knows it from the site file, laid out for the
    single-line diagram; a prosumer's is their premises only."""
    return NetworkOut.model_validate(_view_for(svc, seen))


@router.get("/network/state", response_model=NetworkStateOut, dependencies=[Depends(no_query)])
def network_now(
    svc: ApiServices = Depends(services), seen: Scope = Depends(scope)
) -> NetworkStateOut:
    """The network now: switch positions, energised buses and islands, what every line carries
    (the sum of what lies beyond it, losses neglected), every device's power."""
    full = _whole(svc)  # the whole network's state, then what the caller may see of it
    st = svc.status()
    values = svc.scada.state.values
    live = {d: {n: v.value for n, v in pts.items()} for d, pts in values.items()}

    def point(device: str, name: str) -> float | None:
        v = live.get(device, {}).get(name)
        return None if v is None or v != v else float(v)

    closed: dict[str, bool] = {}
    for sw in full.switches:
        said = point(sw.id, "switch_closed")
        closed[sw.id] = sw.normally_closed if said is None else said >= 0.5
    utility = point("pcc", "utility_available")
    utility_up = utility is None or utility >= 0.5
    grid_connected = utility_up and closed.get("pcc", True)
    mode = st.mode if st.mode in MODES else "grid"
    forming = []
    if mode != "blackout":
        for d in full.devices:
            if not d.grid_forming or point(d.id, "connected") == 0.0:
                continue
            if d.kind == "chp" and not (point(d.id, "on") or (point(d.id, "p_kw") or 0.0) > 0.01):
                continue  # a CHP that is not running holds nothing up
            forming.append(d.bus)
    device_bus = {d.id: d.bus for d in full.devices}
    inj = injections(device_bus, list(full.meter_specs), live)
    state = network_state(
        full.topology,
        inj.bus_kw,
        closed,
        grid_connected=grid_connected,
        forming_buses=forming,
    )
    private = seen.private
    devices = {
        d.id: DeviceState(
            # a load's power is its meter's data: not for those who may not see meters
            p_kw=inj.device_kw.get(d.id)
            if not private or point(d.id, "p_kw") is not None
            else None,
            energised=d.bus in state.energised,
        )
        for d in full.devices
        if seen.sees_device(d.id)
    }
    meters = {
        m.id: MeterState(import_kw=point(m.id, "import_kw"), loads_kw=inj.meter_loads_kw.get(m.id))
        for m in full.meters
        if seen.sees_device(m.id) and (seen.everything or m.id in seen.meters)
    }
    if seen.everything:
        buses = set(full.topology.buses)
        flows = state.flow_kw
        switches = closed
    else:
        buses = {d.bus for d in full.devices if d.id in seen.devices}
        flows, switches = {}, {}
    return NetworkStateOut(
        ts=st.ts,
        mode=mode,
        utility_available=utility_up,
        grid_connected=grid_connected,
        switches=switches,
        energised=sorted(state.energised & buses),
        islands=[sorted(part & buses) for part in state.islands if part & buses],
        meshed=state.meshed and seen.everything,
        flows_kw=flows,
        devices=devices,
        meters=meters,
    )
