"""The site file: a YAML description of one MEG, validated with pydantic.

Errors name the file, the field and what is accepted; ``load_site`` raises ``SiteFileError`` with
every problem found, and never writes anything.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Annotated, Any, TypeVar

import yaml
from pydantic import (
    Field,
    ValidationError,
    model_validator,
)

from openmeg.core.building_automation import BasSystem
from openmeg.core.equipment import (
    EVCharger,
    HeatLoad,
    Load,
    Meter,
    Sensor,
    ShiftableLoad,
)
from openmeg.core.errors import Problem, SiteFileError
from openmeg.core.network import (
    NETWORK_CATALOGUE,
    add_switches_and_ties,
    load_network,
    network_outline,
)
from openmeg.core.scenario import (
    Scenario,
    move_to_scenario,
    tag_kinds,
    unknown_scenario_devices,
)
from openmeg.core.site_sections import (
    AlarmLimit,
    Building,
    Controller,
    Customer,
    Frozen,
    InputLimits,
    Network,
    SiteInfo,
    Utility,
    VeeSettings,
)

# the sections a site file is made of, importable from here as before
from openmeg.core.site_sections import LineSwitch as LineSwitch
from openmeg.core.site_sections import Outage as Outage
from openmeg.core.site_sections import Simulation as Simulation
from openmeg.core.site_sections import SyncCheck as SyncCheck
from openmeg.core.site_sections import Tie as Tie
from openmeg.core.tariff import Tariff
from openmeg.core.wiring import ON_WIRE_KINDS, address_problems
from openmeg.der.ratings import CHP, PV, Battery, FuelCell, HeatStorage, Wind
from openmeg.der.wind_curves import library_curve

T = TypeVar("T")
SITES_DIR = Path(__file__).resolve().parent.parent / "sites"

Device = Annotated[
    PV
    | Wind
    | CHP
    | FuelCell
    | Battery
    | HeatStorage
    | Load
    | ShiftableLoad
    | HeatLoad
    | EVCharger
    | Sensor,
    Field(discriminator="kind"),
]
DEVICE_KINDS = (
    "pv",
    "wind",
    "chp",
    "fuel_cell",
    "battery",
    "heat_storage",
    "load",
    "shiftable_load",
    "heat_load",
    "ev_charger",
    "sensor",
)
CONTROLLER_KINDS = ("self_consumption", "heat_led_chp")
DEFAULT_CONTROLLERS = (("heat_led_chp", 10, "chp"), ("self_consumption", 20, "battery"))
"""A site file without a ``controllers`` section runs these: ``(kind, priority, device kind
it needs)``, each where the site has such a device; ``controllers: []`` runs none."""
DOMAIN_OF_KIND = {
    "pv": "der",
    "wind": "der",
    "chp": "der",
    "fuel_cell": "der",
    "battery": "der",
    "heat_storage": "der",
    "load": "customer",
    "shiftable_load": "customer",
    "heat_load": "customer",
    "ev_charger": "customer",
    "sensor": "distribution",
}
"""The Y.2071 domain (clause 8) each kind of device belongs to; it names the bus topics."""


class Site(Frozen):
    """One MEG."""

    site: SiteInfo = Field(description="identity and location of the MEG")
    network: Network = Field(
        description=(
            "the electric network: a catalogue name or a pandapower JSON file, with "
            "switches and ties"
        )
    )
    utility: Utility = Field(description="the utility connection at the point of common coupling")
    customers: tuple[Customer, ...] = Field(description="the customers of the MEG")
    buildings: tuple[Building, ...] = Field(
        (), description="aggregate buildings whose owners share one basic charge"
    )
    bas: tuple[BasSystem, ...] = Field(
        (),
        description=(
            "building automation systems: one BACnet/IP device per premises and the equipment "
            "(air handling, heat pumps, lighting zones, fire and security status) it controls"
        ),
    )
    devices: tuple[Device, ...] = Field(
        description="every piece of equipment: DERs, loads, EV chargers, sensors (by kind)"
    )
    meters: tuple[Meter, ...] = Field(description="smart meters and sub-meters")
    controllers: tuple[Controller, ...] = Field(
        (),
        description=(
            "the controllers of the control cycle, run in priority order; absent: heat_led_chp "
            "(priority 10) where there is a CHP and self_consumption (priority 20) where there "
            "is a battery; [] runs none"
        ),
    )
    alarm_limits: tuple[AlarmLimit, ...] = Field(
        (), description="SCADA alarm limits beyond (or instead of) the built-in ones"
    )
    vee: VeeSettings = Field(VeeSettings(), description="limits of the MDMS's validation rules")
    input_limits: InputLimits = Field(
        InputLimits(), description="bounds of what the MEG takes from its bus (prices, meters)"
    )
    tariffs: dict[str, Tariff] = Field(
        {}, description="tariffs by id, in the structure of NREL's Utility Rate Database"
    )
    scenario: Scenario | None = Field(
        None,
        description=(
            "the simulated plant, read only by the simulated field (openmeg sim serve, openmeg "
            "simulate): weather, scheduled outages, simulation settings and each device's "
            "physics; a site of real equipment needs none"
        ),
    )

    @model_validator(mode="before")
    @classmethod
    def _scenario(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        moved, _ = move_to_scenario(data)
        return tag_kinds(moved)

    @model_validator(mode="before")
    @classmethod
    def _default_controllers(cls, data: Any) -> Any:
        if not isinstance(data, dict) or "controllers" in data:
            return data
        devices = data.get("devices") or ()
        kinds = {
            d.get("kind") if isinstance(d, dict) else getattr(d, "kind", None) for d in devices
        }
        defaults = [
            {"kind": k, "priority": p} for k, p, need in DEFAULT_CONTROLLERS if need in kinds
        ]
        return {**data, "controllers": defaults}

    def meter_max_kw(self) -> float:
        """The largest power a meter of the site can measure [kW] (``input_limits``)."""
        if self.input_limits.meter_max_kw is not None:
            return self.input_limits.meter_max_kw
        total = self.utility.import_limit_kw + self.utility.export_limit_kw
        for d in self.devices:
            ratings = (
                getattr(d, name, None)
                for name in (
                    "inverter_kw",
                    "rated_kw",
                    "p_el_max_kw",
                    "p_max_kw",
                    "p_charge_max_kw",
                    "p_discharge_max_kw",
                    "p_kw",
                )
            )
            total += sum(r for r in ratings if isinstance(r, int | float))
        return total

    def device(self, device_id: str) -> Device:
        for d in self.devices:
            if d.id == device_id:
                return d
        raise KeyError(f"no device {device_id!r} in site {self.site.id!r}")

    def device_as(self, device_id: str, kind: type[T]) -> T:
        """The device ``device_id``, which must be of the given class."""
        device = self.device(device_id)
        if not isinstance(device, kind):
            raise KeyError(f"device {device_id!r} is a {device.kind}, not a {kind.__name__}")
        return device

    def domains(self) -> dict[str, str]:
        """``device or meter id -> domain`` for every device, meter, line switch and tie, the
        PCC and the cycle."""
        out = {d.id: DOMAIN_OF_KIND[d.kind] for d in self.devices}
        out |= {m.id: "customer" for m in self.meters}
        out |= {s.id: "distribution" for s in self.network.switches}
        out |= {t.id: "distribution" for t in self.network.ties}
        return out | {"pcc": "distribution", "grid": "distribution", "cycle": "operation"}

    def devices_of(self, kind: str) -> list[Any]:
        return [d for d in self.devices if d.kind == kind]


def site_schema() -> dict[str, Any]:
    """The JSON Schema of a site file: every field with its description, units and limits."""
    schema = Site.model_json_schema()
    # a scenario entry takes its kind from its device: any of the kinds' physics, no tag needed
    physics = schema["$defs"]["Scenario"]["properties"]["devices"]["additionalProperties"]
    physics["anyOf"] = physics.pop("oneOf")
    del physics["discriminator"]
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "openmeg site file"
    return schema


def _field(loc: tuple[int | str, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif part in DEVICE_KINDS and out.startswith(("devices[", "devices.", "scenario.devices.")):
            out += f"({part})"
        else:
            out += f".{part}" if out else str(part)
    return out or "(top level)"


def resolve_site_path(name_or_path: str) -> Path:
    """A shipped site by name (``demo``) or a path to a site file."""
    path = Path(name_or_path)
    if path.suffix in (".yaml", ".yml") or path.exists():
        return path
    shipped = SITES_DIR / f"{name_or_path}.yaml"
    if shipped.exists():
        return shipped
    known = ", ".join(sorted(p.stem for p in SITES_DIR.glob("*.yaml")))
    raise SiteFileError(
        [
            Problem(
                file=name_or_path,
                field="(file)",
                message=f"no such file or shipped site; shipped sites: {known}",
            )
        ]
    )


def is_shipped_demo(path: Path) -> bool:
    """Whether ``path`` is a site shipped with openmeg to load by name (``demo``)."""
    return path.resolve().parent == SITES_DIR


def read_mapping(path: Path, what: str) -> dict[str, Any]:
    """The YAML mapping in ``path``; ``SiteFileError`` naming the file when it cannot be read,
    is not YAML, or is not a mapping (``what``: what the file should be)."""
    file = str(path)
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as err:
        raise SiteFileError(
            [Problem(file=file, field="(file)", message=f"cannot read: {err.strerror}")]
        ) from err
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else "(yaml)"
        what_went_wrong = getattr(err, "problem", None) or str(err)
        raise SiteFileError(
            [Problem(file=file, field=where, message=f"YAML syntax error: {what_went_wrong}")]
        ) from err
    if not isinstance(raw, dict):
        raise SiteFileError([Problem(file=file, field="(top level)", message=what)])
    return raw


def load_site(name_or_path: str | Path) -> Site:
    """Read, validate and cross-check a site file; raise ``SiteFileError`` listing every problem."""
    return load_site_with_notes(name_or_path)[0]


def load_site_with_notes(name_or_path: str | Path) -> tuple[Site, list[str]]:
    """``load_site``, and a deprecation note for each field found in its old place (moved into
    the scenario as the site is loaded)."""
    path = resolve_site_path(str(name_or_path))
    file = str(path)
    raw = read_mapping(path, "a site file is a YAML mapping with keys site, network, devices, ...")
    try:
        raw, notes = move_to_scenario(raw)
    except ValueError as err:
        raise SiteFileError([Problem(file=file, field="scenario", message=str(err))]) from err
    raw, strangers = unknown_scenario_devices(raw)
    unknown = [
        Problem(file=file, field=f"scenario.devices.{s}", message=f"{s!r} is not a device id")
        for s in strangers
    ]
    try:
        site = Site.model_validate(raw)
    except ValidationError as err:
        raise SiteFileError(unknown + validation_problems(err, file)) from err
    found = cross_check(site, path)
    if found or unknown:
        raise SiteFileError(unknown + [Problem(file=file, field=f, message=m) for f, m in found])
    return site, notes


def validation_problems(
    err: ValidationError, file: str, scenario_at: tuple[str, ...] = ("scenario",)
) -> list[Problem]:
    """The problems of a failed validation, each named by its field (``scenario_at``: where the
    scenario's fields are: in a site file under scenario, in a scenario file at the top)."""
    problems = []
    for e in err.errors():
        loc = tuple(e["loc"])
        msg = e["msg"]
        if e["type"] == "union_tag_invalid":
            kind = e["input"].get("kind") if isinstance(e["input"], dict) else None
            msg = f"unknown device kind {kind!r}; accepted: {', '.join(DEVICE_KINDS)}"
        elif e["type"] == "extra_forbidden" and loc[-1] == "address":
            msg = (
                "this kind of device is not on the wire and takes no address; these do: "
                f"{', '.join(ON_WIRE_KINDS)}, meters and utility.transfer_switch_address"
            )
        elif e["type"] == "union_tag_not_found" and loc[:-1] == (*scenario_at, "devices"):
            msg = f"{loc[-1]!r} is not a device id of this site"
        elif e["type"] == "literal_error" and "expected" in e.get("ctx", {}):
            msg = f"{msg} (got {e['input']!r})"
        problems.append(Problem(file=file, field=_field(loc), message=msg))
    return problems


def network_of(site: Site, site_path: Path | None = None) -> Any:
    """The pandapower net of ``site``, with its line switches (closed) and tie lines (open)."""
    file = None
    if site.network.file is not None:
        file = Path(site.network.file)
        if site_path is not None and not file.is_absolute():
            file = site_path.parent / file
    net = load_network(site.network.catalogue, file)
    add_switches_and_ties(net, site.network.switches, site.network.ties)
    return net


def cross_check(site: Site, path: Path) -> list[tuple[str, str]]:
    """Problems that span several fields: ids, references, buses, shares."""
    out: list[tuple[str, str]] = []
    net_cfg = site.network
    if (net_cfg.catalogue is None) == (net_cfg.file is None):
        out.append(
            ("network", f"give exactly one of catalogue ({', '.join(NETWORK_CATALOGUE)}) or file")
        )
        return out
    file = Path(net_cfg.file) if net_cfg.file else None
    if file is not None and not file.is_absolute():
        file = path.parent / file
    try:
        outline = network_outline(net_cfg.catalogue, file)
    except (OSError, ValueError) as err:
        out.append(("network.file", f"cannot load the network: {err}"))
        return out
    buses, lines, std_types = outline.buses, outline.lines, outline.line_types
    for i, sw in enumerate(net_cfg.switches):
        if sw.line not in lines:
            out.append((f"network.switches[{i}].line", f"line {sw.line!r} is not in the network"))
    for i, tie in enumerate(net_cfg.ties):
        for end in ("from_bus", "to_bus"):
            if getattr(tie, end) not in buses:
                out.append(
                    (f"network.ties[{i}].{end}", f"bus {getattr(tie, end)!r} is not in the network")
                )
        if tie.std_type not in std_types:
            out.append((f"network.ties[{i}].std_type", f"unknown line type {tie.std_type!r}"))

    ids = [d.id for d in site.devices] + [m.id for m in site.meters]
    ids += [sw.id for sw in net_cfg.switches] + [t.id for t in net_cfg.ties]
    for dup, n in Counter(ids).items():
        if n > 1:
            out.append(("devices/meters", f"id {dup!r} is used {n} times; ids must be unique"))
    for dup, n in Counter(c.id for c in site.customers).items():
        if n > 1:
            out.append(("customers", f"id {dup!r} is used {n} times; ids must be unique"))
    customers = {c.id for c in site.customers} | {"community"}
    devices = {d.id: d for d in site.devices}
    meters = {m.id for m in site.meters}
    hint = ", ".join(sorted(buses)[:6]) + ", ..."
    if site.utility.pcc_bus not in buses:
        out.append(
            (
                "utility.pcc_bus",
                f"bus {site.utility.pcc_bus!r} is not in the network (buses: {hint})",
            )
        )
    for i, d in enumerate(site.devices):
        where = f"devices[{i}]({d.kind})"
        if d.bus not in buses:
            out.append((f"{where}.bus", f"bus {d.bus!r} is not in the network (buses: {hint})"))
        if d.owner not in customers:
            out.append((f"{where}.owner", f"{d.owner!r} is not a customer id or 'community'"))
        if isinstance(d, Wind):
            try:
                library_curve(d.turbine_type)
            except ValueError as err:
                out.append((f"{where}.turbine_type", str(err)))
        for ref_field in ("heat_storage", "watches"):
            ref = getattr(d, ref_field, None)
            if ref is None:
                continue
            want = "heat_storage" if ref_field == "heat_storage" else None
            if ref not in devices or (want and devices[ref].kind != want):
                out.append(
                    (f"{where}.{ref_field}", f"{ref!r} is not a {want or 'device'} id of this site")
                )
    for i, m in enumerate(site.meters):
        if m.customer not in customers:
            out.append((f"meters[{i}].customer", f"{m.customer!r} is not a customer id"))
        if m.parent is not None and m.parent not in meters:
            out.append((f"meters[{i}].parent", f"{m.parent!r} is not a meter id"))
        for dev in m.devices:
            if dev not in devices:
                out.append((f"meters[{i}].devices", f"{dev!r} is not a device id"))
    buildings = {b.id: b for b in site.buildings}
    for i, b in enumerate(site.buildings):
        if b.main_meter not in meters:
            out.append((f"buildings[{i}].main_meter", f"{b.main_meter!r} is not a meter id"))
        owners = [c for c in site.customers if c.building == b.id]
        if not owners:
            out.append(
                (
                    f"buildings[{i}]",
                    "an aggregate building needs owners (customers with building and share)",
                )
            )
        elif abs((total := sum(c.share or 0 for c in owners)) - 1) > 1e-9:
            out.append(
                (f"buildings[{i}]", f"owner shares add up to {total:g}; they must add up to 1")
            )
    premises = {c.id for c in site.customers} | set(buildings)
    for i, bas in enumerate(site.bas):
        if bas.premises not in premises:
            out.append((f"bas[{i}].premises", f"{bas.premises!r} is not a customer or building id"))
    for i, c in enumerate(site.customers):
        if c.tariff is not None and c.tariff not in site.tariffs:
            known = ", ".join(sorted(site.tariffs)) or "none"
            out.append(
                (f"customers[{i}].tariff", f"{c.tariff!r} is not a tariff id; tariffs: {known}")
            )
        if c.building is not None and c.building not in buildings:
            out.append((f"customers[{i}].building", f"{c.building!r} is not a building id"))
        if (c.building is None) != (c.share is None):
            out.append(
                (
                    f"customers[{i}]",
                    "an owner in an aggregate building needs both building and share",
                )
            )
    out += address_problems(site)
    for prio, n in Counter(c.priority for c in site.controllers).items():
        if n > 1:
            out.append(
                ("controllers", f"priority {prio} is used {n} times; priorities must be unique")
            )
    if site.scenario is not None:
        out += scenario_problems(site, site.scenario)
    return out


def scenario_problems(site: Site, scenario: Scenario) -> list[tuple[str, str]]:
    """Problems of the scenario against the site: device ids and kinds, states, outages."""
    out: list[tuple[str, str]] = []
    devices: dict[str, Any] = {}
    for d in site.devices:
        devices.setdefault(d.id, d)
    for device_id, physics in scenario.devices.items():
        where = f"scenario.devices.{device_id}"
        device = devices.get(device_id)
        if device is None:
            out.append((where, f"{device_id!r} is not a device id of this site"))
        elif physics.kind != device.kind:
            out.append((f"{where}.kind", f"the device is a {device.kind}, not a {physics.kind}"))
        elif isinstance(device, Battery):
            soc = physics.soc_initial  # type: ignore[union-attr]
            if not device.soc_min <= soc <= device.soc_max:
                out.append(
                    (
                        f"{where}.soc_initial",
                        f"soc_initial {soc:g} must lie between the battery's soc_min "
                        f"{device.soc_min:g} and soc_max {device.soc_max:g}",
                    )
                )
    for o in scenario.outages:
        if o.end <= o.start:
            out.append(
                (
                    "scenario.outages",
                    f"outage starting {o.start.isoformat()} must end after it starts",
                )
            )
    return out
