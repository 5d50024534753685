"""The network as a graph of what conducts, hand-checked on the demo (CIGRE LV, its residential
feeder R0..R18 behind breaker cb-r on Line R1-R2, sectionalizers on R3-R4, R5-R6 and R9-R10,
the normally open tie R18-C20)."""

from openmeg.core.site import load_site, network_of
from openmeg.core.topology import (
    energised,
    fault_path,
    line_index,
    normal_state,
    protecting,
    switch_index,
)

NET = network_of(load_site("demo"))
BUS = {str(n): int(i) for i, n in zip(NET.bus.index, NET.bus["name"], strict=True)}
SW = switch_index(NET)
NAME = {i: n for n, i in SW.items()}
LINE = line_index(NET)


def _state(**closed: bool) -> dict[int, bool]:
    state = normal_state(NET)
    for name, c in closed.items():
        state[SW[name.replace("_", "-")]] = c
    return state


def _buses(*names: str) -> set[int]:
    return {BUS[f"Bus {n}"] for n in names}


def test_the_normal_state_supplies_every_bus_and_the_tie_is_open() -> None:
    state = normal_state(NET)
    assert {NAME[s] for s, c in state.items() if not c} == {"tie-r18-c20"}
    assert energised(NET, state) == set(BUS.values())


def test_an_open_breaker_darkens_its_feeder() -> None:
    dark = set(BUS.values()) - energised(NET, _state(cb_r=False))
    assert dark == _buses(*(f"R{i}" for i in range(2, 19)))
    # the section bounded by sw-r5 and sw-r9, with the tie closed: only R6..R9, R16, R17 dark
    isolated = _state(sw_r5=False, sw_r9=False, tie_r18_c20=True)
    assert set(BUS.values()) - energised(NET, isolated) == _buses(
        "R6", "R7", "R8", "R9", "R16", "R17"
    )


def test_fault_current_passes_the_closed_switches_from_the_source() -> None:
    normal = normal_state(NET)
    path = fault_path(NET, normal, LINE["Line R6-R7"])
    assert [NAME[s] for s in path] == ["cb-r", "sw-r3", "sw-r5"]
    assert NAME[protecting(NET, path)] == "cb-r"
    # on a switched line the line's own switch (at its from_bus end) carries it too
    assert [NAME[s] for s in fault_path(NET, normal, LINE["Line R5-R6"])] == [
        "cb-r",
        "sw-r3",
        "sw-r5",
    ]
    assert [NAME[s] for s in fault_path(NET, normal, LINE["Line R2-R3"])] == ["cb-r"]
    # a line that is not supplied draws no fault current
    assert fault_path(NET, _state(cb_r=False), LINE["Line R6-R7"]) == []


def test_fed_through_the_tie_the_switch_nearest_the_fault_clears_it() -> None:
    # sw-r5 open, the tie closed: R6-R7 is fed from the commercial feeder, through the tie and
    # sw-r9 (no breaker on the way: the switch nearest the fault stands for the protection)
    state = _state(sw_r5=False, tie_r18_c20=True)
    path = fault_path(NET, state, LINE["Line R6-R7"])
    assert [NAME[s] for s in path] == ["tie-r18-c20", "sw-r9"]
    assert NAME[protecting(NET, path)] == "sw-r9"
