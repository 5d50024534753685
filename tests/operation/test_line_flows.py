"""Line flows and energised buses of a small radial tree, checked by hand:

    P ──a── A ──b── B ──c[s1]── C
            │                   ┊
            └──d── D ┄┄t[tie]┄┄┘   (tie normally open)

injections: A -10 kW (a load), B +4 kW (PV), C -3 kW (a load), D +2 kW (a battery)."""

from __future__ import annotations

import pytest

from openmeg.operation.line_flows import (
    Branch,
    MeterSpec,
    Topology,
    injections,
    network_state,
)

TREE = Topology(
    buses=("P", "A", "B", "C", "D"),
    branches=(
        Branch(id="a", from_bus="P", to_bus="A"),
        Branch(id="b", from_bus="A", to_bus="B"),
        Branch(id="c", from_bus="B", to_bus="C", switch="s1"),
        Branch(id="d", from_bus="A", to_bus="D"),
        Branch(id="t", from_bus="D", to_bus="C", switch="tie"),
    ),
    pcc_bus="P",
)
KW = {"A": -10.0, "B": 4.0, "C": -3.0, "D": 2.0}
NORMAL = {"s1": True, "tie": False}


def test_a_line_carries_what_lies_beyond_it() -> None:
    st = network_state(TREE, KW, NORMAL, grid_connected=True)
    # c: C draws 3 kW from B; b: beyond B is +4 - 3 = +1 kW, so 1 kW flows from B to A;
    # d: D gives 2 kW to A; a: A needs 10 - 1 - 2 = 7 kW from the PCC
    assert st.flow_kw == {"a": 7.0, "b": -1.0, "c": 3.0, "d": -2.0, "t": 0.0}
    assert st.energised == {"P", "A", "B", "C", "D"}
    assert st.islands == ()
    assert not st.meshed


def test_an_open_switch_darkens_what_lies_beyond_it() -> None:
    st = network_state(TREE, KW, {"s1": False, "tie": False}, grid_connected=True)
    assert st.energised == {"P", "A", "B", "D"}
    # C is cut off: its load draws nothing through c; b: 4 kW from B to A; a: 10 - 4 - 2 = 4
    assert st.flow_kw == {"a": 4.0, "b": -4.0, "c": 0.0, "d": -2.0, "t": 0.0}


def test_the_tie_feeds_a_part_cut_off_by_its_switch() -> None:
    st = network_state(TREE, KW, {"s1": False, "tie": True}, grid_connected=True)
    assert st.energised == {"P", "A", "B", "C", "D"}
    # C's 3 kW now come through the tie from D (t runs D -> C); d: D gives 2 - 3 = -1, so
    # 1 kW flows from A to D; a: 10 - 4 + 1 = 7
    assert st.flow_kw == {"a": 7.0, "b": -4.0, "c": 0.0, "d": 1.0, "t": 3.0}


def test_an_island_is_fed_from_its_grid_forming_unit() -> None:
    balanced = {**KW, "D": 9.0}  # the grid-forming battery covers the island's 9 kW
    st = network_state(TREE, balanced, NORMAL, grid_connected=False, forming_buses=["D"])
    assert st.energised == {"P", "A", "B", "C", "D"}
    assert st.islands == (frozenset({"P", "A", "B", "C", "D"}),)
    assert st.sources == ("D",)
    # d: 9 kW from D to A (against the line's from->to); a: the PCC bus draws nothing
    assert st.flow_kw == {"a": 0.0, "b": -1.0, "c": 3.0, "d": -9.0, "t": 0.0}


def test_a_blackout_leaves_every_bus_dark() -> None:
    st = network_state(TREE, KW, NORMAL, grid_connected=False, forming_buses=[])
    assert st.energised == frozenset()
    assert set(st.flow_kw.values()) == {0.0}


def test_an_island_beyond_an_open_switch_stays_apart_from_the_grid() -> None:
    # grid-connected, s1 open and the tie closed; a grid-forming unit at C? C is fed by the tie
    # from D, so it is the grid's; with the tie open too, a unit at C holds C up on its own
    st = network_state(
        TREE, KW, {"s1": False, "tie": False}, grid_connected=True, forming_buses=["C"]
    )
    assert st.islands == (frozenset({"C"}),)
    assert st.sources == ("P", "C")


def test_a_closed_loop_has_no_radial_flow() -> None:
    st = network_state(TREE, KW, {"s1": True, "tie": True}, grid_connected=True)
    assert st.meshed
    assert sum(v is None for v in st.flow_kw.values()) == 1


def test_injections_from_wired_devices_and_meters() -> None:
    bus = {"pv1": "B", "load1": "B", "common": "A", "l2": "C", "ev2": "C", "wind": "P"}
    meters = [
        MeterSpec(id="m1", devices=("pv1", "load1")),
        MeterSpec(id="mb", devices=("common",)),
        MeterSpec(id="mc", devices=("l2", "ev2"), parent="mb"),
        MeterSpec(id="mw", devices=("wind",)),
    ]
    live = {
        "pv1": {"p_kw": 4.0},
        "m1": {"import_kw": -1.0},  # exports 1 kW: its load draws 4 - 1 = 3 kW
        "mb": {"import_kw": 10.0},  # the building's main meter, its sub-meter's 7 kW included
        "mc": {"import_kw": 7.0},
        "wind": {"p_kw": 12.0},
        "mw": {"import_kw": -11.9},  # a meter of wired devices only adds nothing
    }
    inj = injections(bus, meters, live)
    assert inj.device_kw == {"pv1": 4.0, "load1": -3.0, "common": -3.0, "wind": 12.0}
    assert inj.meter_loads_kw == {"mc": -7.0}
    assert inj.bus_kw == {"B": 1.0, "A": -3.0, "C": -7.0, "P": 12.0}


def test_a_meter_without_a_reading_adds_nothing() -> None:
    inj = injections({"load1": "B"}, [MeterSpec(id="m1", devices=("load1",))], {"m1": {}})
    assert inj.bus_kw == {} and inj.device_kw == {}
    nan = float("nan")
    inj = injections(
        {"load1": "B"}, [MeterSpec(id="m1", devices=("load1",))], {"m1": {"import_kw": nan}}
    )
    assert inj.bus_kw == {}


@pytest.mark.parametrize("kw", [{"A": -10.0}, {}])
def test_buses_without_devices_inject_nothing(kw: dict[str, float]) -> None:
    st = network_state(TREE, kw, NORMAL, grid_connected=True)
    assert st.flow_kw["c"] == 0.0 and st.flow_kw["a"] == -kw.get("A", 0.0)
