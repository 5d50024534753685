"""The demo's network as the single-line diagram lays it out: everything of the site file drawn
once, nothing drawn over anything else, wide enough for a wide screen only."""

from __future__ import annotations

import itertools

import pytest

from openmeg.core.site import Site, load_site, network_of
from openmeg.operation.network_view import BAR_H, NetworkView, network_view, premises_view


@pytest.fixture(scope="module")
def site() -> Site:
    return load_site("demo")


@pytest.fixture(scope="module")
def view(site: Site) -> NetworkView:
    return network_view(site, network_of(site))


Box = tuple[float, float, float, float]


def overlap(a: Box, b: Box) -> bool:
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


def test_every_device_is_listed_once_at_its_bus(site: Site, view: NetworkView) -> None:
    listed = [(p.bus, r.id) for p in view.panels for r in p.rows if r.kind == "device"]
    assert sorted(d for _, d in listed) == sorted(d.id for d in site.devices)
    bus_of = {d.id: d.bus for d in site.devices}
    assert all(bus_of[d] == bus for bus, d in listed)
    # a meter heads the devices it measures at each bus it measures at; sub-meters under it
    r1 = next(p for p in view.panels if p.bus == "Bus R1")
    order = [r.id for r in r1.rows]
    assert order[:4] == ["m-bldg1", "load-bldg1-common", "m-o1", "load-o1"]
    assert {r.depth for r in r1.rows if r.id.startswith("m-o")} == {1}


def test_nothing_is_drawn_over_anything_else(view: NetworkView) -> None:
    panels = [(p.x, p.y, p.x + p.width, p.y + p.height) for p in view.panels]
    for a, b in itertools.combinations(panels, 2):
        assert not overlap(a, b), (a, b)
    bars = [(b.x - 3, b.y - BAR_H / 2 - 14, b.x + 3, b.y + BAR_H / 2) for b in view.buses]
    for bar, panel in itertools.product(bars, panels):
        assert not overlap(bar, panel), (bar, panel)
    for a, b in itertools.combinations(bars, 2):
        assert not overlap(a, b), (a, b)
    # a line runs right from its upstream bus: every bus but the PCC's lies right of its feeder
    x = {b.name: b.x for b in view.buses}
    for ln in view.lines:
        if ln.kind == "line":
            assert x[ln.to_bus] > x[ln.from_bus], ln.name
    assert view.width < 1800 and view.height < 1600  # a full-HD screen, unscaled


def test_names_people_read(view: NetworkView) -> None:
    names = {d.id: d.name for d in view.devices}
    assert names["wind1"] == "Community wind turbine"  # the site file's
    assert names["pv-factory"] == "PV Kessler Metalworks"  # the kind and the owner's name
    assert names["load-factory"] == "Kessler Metalworks"  # a premises' load: the premises
    assert names["sensor-chp1"] == "Sensor District CHP"  # named after what it watches
    assert len(set(names.values())) == len(names)


def test_a_premises_view_holds_the_premises_only(view: NetworkView) -> None:
    own = premises_view(view, ["load-h05", "pv-h05", "bess-h05", "m-h05"], ["m-h05"])
    assert [d.id for d in own.devices] == ["load-h05", "pv-h05", "bess-h05"]
    assert [b.name for b in own.buses] == ["Bus R16"]
    assert own.lines == () and own.switches == () and own.topology.branches == ()
    assert [r.id for p in own.panels for r in p.rows] == ["m-h05", "load-h05", "pv-h05", "bess-h05"]
    assert premises_view(view, [], []).buses == ()
