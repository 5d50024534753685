"""The bus injections the platform knows for the tie's power flow check, hand-checked."""

import math

import pytest

from openmeg.core.site import load_site, network_of
from openmeg.distribution.injections import bus_injections

SITE = load_site("demo")
NET = network_of(SITE)
BUS = {str(n): int(i) for i, n in zip(NET.bus.index, NET.bus["name"], strict=True)}
TAN_PHI = math.tan(math.acos(0.95))  # 0.3287


def test_meters_at_their_bus_and_the_community_devices_at_theirs() -> None:
    values = {
        "m-h01/import_kw": 2.0,  # Bus R11: a home drawing 2 kW
        "m-h09/import_kw": -3.0,  # Bus R18: a home exporting 3 kW
        "m-bldg1/import_kw": 10.0,  # Bus R1, its sub-meters inside it
        "m-o1/import_kw": 4.0,  # a sub-meter: not counted again
        "wind1/p_kw": 100.0,  # the community meter spans buses: its devices at theirs
        "bess-community/p_kw": -20.0,  # Bus R1, charging
        "m-community/import_kw": 999.0,  # not used: its devices sit on four buses
        "m-h04/import_kw": math.nan,  # not known: 0
    }
    p, q = bus_injections(SITE, NET, values)
    assert p[BUS["Bus R11"]] == pytest.approx(-0.002)
    assert q[BUS["Bus R11"]] == pytest.approx(-0.002 * TAN_PHI)
    assert p[BUS["Bus R18"]] == pytest.approx(0.003) and q[BUS["Bus R18"]] == 0.0
    assert p[BUS["Bus R1"]] == pytest.approx(-0.030)  # -10 kW metered, -20 kW charging
    assert p[BUS["Bus 0"]] == pytest.approx(0.100)
    assert p[BUS["Bus R15"]] == 0.0
    assert p.sum() == pytest.approx(-0.002 + 0.003 - 0.030 + 0.100)
