"""The site's wire: which of its devices answer Modbus TCP, in the order the simulated field
lays them out (the transfer switch, the devices, the meters), and where the site file says
they answer. Both programs read it: the field serves there, the platform connects there."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from openmeg.core.addresses import DeviceAddress, ModbusAddress
from openmeg.core.device_networks import DeviceNetwork, default_networks, parse_network
from openmeg.der.ratings import WiredDevice

if TYPE_CHECKING:
    from openmeg.core.site import Site

ON_WIRE_KINDS = ("pv", "wind", "chp", "fuel_cell", "battery", "heat_storage", "sensor")
"""The kinds of device that answer on the wire (besides the transfer switch and the meters)."""
TRANSFER_SWITCH = "pcc"
"""The id of the transfer switch at the point of common coupling."""


@dataclass(frozen=True, kw_only=True)
class OnWire:
    """A device on the wire: its id, its kind, the site-file field of its address, the address."""

    id: str
    kind: str
    field: str
    address: ModbusAddress | None


def on_wire(site: Site) -> list[OnWire]:
    """Every device of ``site`` on the wire: the transfer switch, the devices, the meters, then
    the network's line switches and ties."""
    out = [
        OnWire(
            id=TRANSFER_SWITCH,
            kind="transfer_switch",
            field="utility.transfer_switch_address",
            address=site.utility.transfer_switch_address,
        )
    ]
    for i, d in enumerate(site.devices):
        if isinstance(d, WiredDevice):
            field = f"devices[{i}]({d.kind}).address"
            out.append(OnWire(id=d.id, kind=d.kind, field=field, address=d.address))
    for i, m in enumerate(site.meters):
        out.append(OnWire(id=m.id, kind="meter", field=f"meters[{i}].address", address=m.address))
    for i, sw in enumerate(site.network.switches):
        field = f"network.switches[{i}].address"
        out.append(OnWire(id=sw.id, kind="line_switch", field=field, address=sw.address))
    for i, tie in enumerate(site.network.ties):
        field = f"network.ties[{i}].address"
        out.append(OnWire(id=tie.id, kind="line_switch", field=field, address=tie.address))
    return out


def site_addresses(site: Site) -> list[DeviceAddress]:
    """The address of every device that the site file gives one, in the order of ``on_wire``."""
    return [
        DeviceAddress(id=w.id, host=a.host, port=a.port, unit=a.unit, models=a.models)
        for w in on_wire(site)
        if (a := w.address) is not None
    ]


def device_networks(site: Site) -> tuple[DeviceNetwork, ...]:
    """Where devices may be added at run time: ``site.device_networks``, or by default the
    hosts of the site's addresses (``127.0.0.1``, the simulated field's, for those without)."""
    if site.site.device_networks is not None:
        return tuple(parse_network(n) for n in site.site.device_networks)
    hosts = [w.address.host if w.address else "127.0.0.1" for w in on_wire(site)]
    return default_networks(hosts)


def unaddressed(site: Site) -> list[str]:
    """The ids of the devices on the wire that the site file gives no address."""
    return [w.id for w in on_wire(site) if w.address is None]


def address_problems(site: Site) -> list[tuple[str, str]]:
    """``(field, message)`` for every address that another device already uses."""
    seen: dict[tuple[str, int, int], OnWire] = {}
    out: list[tuple[str, str]] = []
    for w in on_wire(site):
        if w.address is None:
            continue
        key = (w.address.host.lower(), w.address.port, w.address.unit)
        first = seen.setdefault(key, w)
        if first is not w:
            out.append(
                (
                    w.field,
                    f"{w.address} is also the address of {first.id} ({first.field}): "
                    "give each device its own host:port:unit",
                )
            )
    return out
