"""The supply status of a premises from the PCC's mode and the DERs' latest points."""

from __future__ import annotations

import pytest

from openmeg.core.errors import OpenMegError
from openmeg.core.site import load_site
from openmeg.customer.supply_status import owners_of, supply_status

SITE = load_site("demo")


def by_name(status: object) -> dict[str, object]:
    return {s.supply: s for s in status.supplies}  # type: ignore[attr-defined]


def test_on_the_grid_the_premises_draws_from_the_grid_and_the_local_supplies_in_shares() -> None:
    devices = {
        "pcc": {"p_kw": 60.0},  # importing
        "pv-h01": {"p_kw": 3.0},
        "pv-factory": {"p_kw": 17.0},
        "wind1": {"p_kw": 20.0},
        "bess-h01": {"p_kw": -2.0},  # charging: no supply
        "chp1": {"p_kw": float("nan")},  # no value: 0
    }
    s = supply_status(SITE, "h01", mode="grid", devices=devices)
    assert (s.mode, s.islanded) == ("grid", False)
    got = by_name(s)
    assert list(got) == ["grid", "pv", "wind", "battery", "chp", "fuel_cell"]
    assert got["grid"].p_kw == 60.0 and got["grid"].live  # type: ignore[attr-defined]
    assert got["pv"].p_kw == 20.0 and got["pv"].own_kw == 3.0  # type: ignore[attr-defined]
    assert got["pv"].devices == ("pv-h01", "pv-factory")  # type: ignore[attr-defined]
    assert not got["battery"].live and not got["chp"].live  # type: ignore[attr-defined]
    # 60 + 20 + 20 = 100 kW fed into the MEG's bus
    assert s.shares == {"grid": 0.6, "pv": 0.2, "wind": 0.2}
    assert s.own_kw == 3.0


def test_in_island_the_grid_is_not_live_and_the_meg_supplies_itself() -> None:
    devices = {"pcc": {"p_kw": 5.0}, "bess-community": {"p_kw": 30.0}, "chp1": {"p_kw": 10.0}}
    s = supply_status(SITE, "office", mode="island", devices=devices)
    got = by_name(s)
    assert s.islanded and not got["grid"].live and got["grid"].p_kw == 0.0  # type: ignore[attr-defined]
    assert s.shares == {"battery": 0.75, "chp": 0.25}
    assert s.own_kw == 0.0


def test_a_blackout_has_no_supply() -> None:
    s = supply_status(SITE, "office", mode="blackout", devices={})
    assert s.islanded and s.shares == {}


def test_a_building_stands_for_its_owners_and_a_stranger_is_refused() -> None:
    assert owners_of(SITE, "bldg1") == {"o1", "o2", "o3", "o4"}
    assert owners_of(SITE, "office") == {"office"}
    with pytest.raises(OpenMegError, match="not a customer or building"):
        supply_status(SITE, "nobody", mode="grid", devices={})
    with pytest.raises(OpenMegError, match="grid, island or blackout"):
        supply_status(SITE, "office", mode="sideways", devices={})
