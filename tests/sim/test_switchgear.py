"""The field's line switches and their protection on the demo network, hand-checked."""

import pytest

from openmeg.core.errors import CommandError
from openmeg.core.site import load_site, network_of
from openmeg.sim.switchgear import CLOSE, OPEN, RESET, Switchgear

SITE = load_site("demo")
NET = network_of(SITE)
BUS = {str(n): int(i) for i, n in zip(NET.bus.index, NET.bus["name"], strict=True)}
R_FEEDER = {f"R{i}" for i in range(2, 19)}
SECTION = {"R6", "R7", "R8", "R9", "R16", "R17"}


def _dark(gear: Switchgear) -> set[str]:
    names = {i: n.removeprefix("Bus ") for n, i in BUS.items()}
    return {names[b] for b in gear.dead}


def test_a_fault_trips_the_breaker_and_latches_the_indicators_on_its_way() -> None:
    gear = Switchgear(SITE, NET)
    assert gear.read()["cb-r/switch_kind"] == 1.0 and gear.read()["tie-r18-c20/switch_kind"] == 3
    assert gear.inject("Line R6-R7") == ["cb-r"]
    assert [s for s, on in gear.indicator.items() if on] == ["cb-r", "sw-r3", "sw-r5"]
    assert _dark(gear) == R_FEEDER
    image = gear.read()
    assert image["cb-r/switch_closed"] == 0.0 and image["sw-r5/fault_passed"] == 1.0
    assert image["sw-r9/fault_passed"] == 0.0 and image["sw-r9/switch_closed"] == 1.0
    # isolation and restoration by command: the faulted section stays dark
    for switch, value in (("sw-r5", OPEN), ("sw-r9", OPEN), ("cb-r", CLOSE)):
        gear.command(switch, value)
    assert _dark(gear) == SECTION | {"R10", "R18"}
    gear.command("tie-r18-c20", CLOSE)
    assert _dark(gear) == SECTION and gear.trips == ["cb-r"]
    # closing onto the fault: the breaker trips again; the tie keeps R10 and R18
    gear.command("sw-r5", CLOSE)
    assert gear.trips == ["cb-r", "cb-r"] and _dark(gear) == R_FEEDER - {"R10", "R18"}
    gear.command("sw-r5", OPEN)
    gear.command("cb-r", CLOSE)
    assert _dark(gear) == SECTION
    # the repair: the crew resets the indicators; the switches stay where they are
    gear.clear()
    assert not any(gear.indicator.values()) and _dark(gear) == SECTION
    gear.command("sw-r5", CLOSE)
    assert _dark(gear) == set() and gear.trips == ["cb-r", "cb-r"]


def test_an_indicator_stays_latched_until_reset() -> None:
    gear = Switchgear(SITE, NET)
    gear.inject("Line R2-R3")
    assert [s for s, on in gear.indicator.items() if on] == ["cb-r"]
    gear.clear(reset_indicators=False)
    assert gear.indicator["cb-r"]
    gear.command("cb-r", CLOSE)
    assert gear.indicator["cb-r"] and _dark(gear) == set()
    gear.command("cb-r", RESET)
    assert not gear.indicator["cb-r"] and gear.position("cb-r")


def test_a_fault_on_a_dark_line_trips_when_it_is_fed_again() -> None:
    gear = Switchgear(SITE, NET)
    gear.command("sw-r5", OPEN)
    assert gear.inject("Line R6-R7") == [] and not any(gear.indicator.values())
    gear.command("sw-r5", CLOSE)
    assert gear.trips == ["cb-r"] and _dark(gear) == R_FEEDER


def test_what_the_field_cannot_do_is_refused_and_changes_nothing() -> None:
    gear = Switchgear(SITE, NET)
    with pytest.raises(CommandError, match="no line 'Line X'"):
        gear.inject("Line X")
    with pytest.raises(CommandError, match="put a breaker on its feeder"):
        gear.inject("Line C3-C4")  # the commercial feeder has no switch in the site file
    with pytest.raises(CommandError, match="no switch 'sw-x'"):
        gear.command("sw-x", OPEN)
    with pytest.raises(CommandError, match=r"takes 0 \(none\), 1 \(open\), 2 \(close\) or 3"):
        gear.command("sw-r5", 4)
    assert gear.fault is None and gear.dead == set() and gear.trips == []
    gear.inject("Line R6-R7")
    with pytest.raises(CommandError, match="Line R6-R7 is faulted already"):
        gear.inject("Line R2-R3")


def test_positions_indicators_and_the_fault_survive_a_restart() -> None:
    gear = Switchgear(SITE, NET)
    gear.inject("Line R6-R7")
    gear.command("sw-r5", OPEN)
    gear.command("cb-r", CLOSE)
    saved = dict(gear.state())
    assert saved["sw-r5"] == {"switch_closed": False, "fault_passed": True}
    assert saved["_fault"] == {"line": "Line R6-R7"}
    again = Switchgear(SITE, NET)
    again.restore(saved)
    assert again.fault == "Line R6-R7" and again.read() == gear.read()
    assert _dark(again) == _dark(gear) == SECTION | {"R10", "R18"}
    assert again.trips == []  # the fault is not fed: nothing trips on restoring
