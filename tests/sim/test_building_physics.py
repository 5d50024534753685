"""The building's BAS equipment: its equations by hand, the stepped plant against the offline
run, commands refused and obeyed, and the faults' truth."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from openmeg.core.bas_scenario import BasEvent, BasFault
from openmeg.core.building_automation import BasSystem
from openmeg.core.errors import CommandError, OpenMegError
from openmeg.sim.physics import building_model as m
from openmeg.sim.physics.building import BuildingPlant, simulate_building

TZ = "Europe/Rome"
BAS = BasSystem.model_validate(
    {
        "id": "bas-t",
        "premises": "office",
        "device_instance": 7,
        "equipment": [
            {"id": "ahu-1", "kind": "ahu", "rated_kw": 7.5, "area_m2": 1200},
            {"id": "hp-1", "kind": "heat_pump", "rated_kw": 30.0, "cop_nominal": 3.6},
            {"id": "light-a", "kind": "lighting_zone", "rated_kw": 2.4, "area_m2": 200},
            {"id": "fire-1", "kind": "fire_alarm"},
            {"id": "sec-1", "kind": "security"},
        ],
    }
)
INDEX = pd.date_range("2026-01-12", periods=96 * 2, freq="15min", tz="UTC")
TEMP = 5.0 + 5.0 * np.sin(np.arange(len(INDEX)) / 96 * 2 * np.pi)


def test_fan_power_follows_the_cube_of_speed_and_the_filter() -> None:
    # 7.5 kW * 0.8^3 = 3.84 kW; a loaded filter (1.0) adds a quarter: 4.8 kW
    assert m.fan_kw(7.5, np.array([0.8]), np.array([0.0]))[0] == pytest.approx(3.84, abs=1e-12)
    assert m.fan_kw(7.5, np.array([0.8]), np.array([1.0]))[0] == pytest.approx(4.8, abs=1e-12)
    assert m.filter_dp_pa(np.array([0.5]), np.array([0.5]))[0] == pytest.approx(45.0)
    assert m.filter_loading(np.array([1000.0, 5000.0])).tolist() == [0.5, 1.0]


def test_cop_is_a_carnot_fraction_fitted_at_the_rating_point() -> None:
    # A7/W35 with 5 K approaches: 313.15 K / (313.15 - 275.15) K = 8.24079
    eta = m.carnot_fraction(3.6)
    assert eta == pytest.approx(3.6 / (313.15 / 38.0), rel=1e-12)
    cop = eta * m.carnot_cop(np.array([True]), np.array([45.0]), np.array([0.0]))[0]
    assert cop == pytest.approx(eta * 323.15 / 55.0, rel=1e-12)
    # cooling water at 7 C against 30 C outdoors: 275.15 K / 33 K
    cool = m.carnot_cop(np.array([False]), np.array([7.0]), np.array([30.0]))[0]
    assert cool == pytest.approx(275.15 / 33.0, rel=1e-12)


def test_zone_is_held_at_the_band_edge_within_the_heat_pumps_capacity() -> None:
    def zone(heat_max: float) -> tuple[float, float]:
        t, q = m.zone_temperature(
            outdoor_c=np.array([0.0]),
            gains_kw=np.array([10.0]),
            ua_kw_k=3.0,
            air_kw_k=np.array([1.0]),
            supply_c=np.array([20.0]),
            low_c=np.array([20.0]),
            high_c=np.array([22.0]),
            heat_max_kw=np.array([heat_max]),
            cool_max_kw=np.array([100.0]),
        )
        return float(t[0]), float(q[0])

    # free: (0 + 10 + 20) / 4 = 7.5 C; held at 20 C: q = 4 * 20 - 30 = 50 kW
    assert zone(100.0) == pytest.approx((20.0, 50.0))
    # at most 40 kW: (30 + 40) / 4 = 17.5 C
    assert zone(40.0) == pytest.approx((17.5, 40.0))


def test_stepped_plant_matches_the_offline_run() -> None:
    faults = [
        BasFault(equipment="hp-1", kind="cop_drift", magnitude=0.2, start="2026-01-12T10:00Z"),
        BasFault(equipment="ahu-1", kind="fan_after_hours", magnitude=0.5, start=INDEX[0]),
    ]
    run = simulate_building(BAS, INDEX, TEMP, timezone=TZ, faults=faults)
    plant = BuildingPlant(BAS, timezone=TZ, faults=faults)
    for i, t in enumerate(INDEX):
        plant.step(t.to_pydatetime(), 900.0, float(TEMP[i]))
        got = plant.read()
        assert set(got) == set(run.points.columns)
        for name, value in got.items():
            assert value == pytest.approx(run.points[name].iloc[i], abs=1e-9), (i, name)
        kw = got["ahu-1.fan_kw"] + got["hp-1.electric_kw"] + got["light-a.lights_kw"]
        assert plant.electric_kw == pytest.approx(kw, abs=1e-12)


def test_fan_after_hours_truth_is_the_fans_energy_off_schedule() -> None:
    fault = BasFault(equipment="ahu-1", kind="fan_after_hours", magnitude=0.5, start=INDEX[0])
    run = simulate_building(BAS, INDEX, TEMP, timezone=TZ, faults=[fault])
    p = run.points
    local_h = INDEX.tz_convert(TZ).hour
    off = (local_h < 7) | (local_h >= 19)
    assert (p["ahu-1.fan_on"] == 1.0).all()
    # at half of 80 %: 7.5 kW * 0.4^3 = 0.48 kW (plus the filter's loading)
    assert p["ahu-1.fan_kw"][off].iloc[0] == pytest.approx(0.48, abs=1e-12)
    assert run.waste_kwh[0] == pytest.approx(p["ahu-1.fan_kw"][off].sum() * 0.25, rel=1e-12)
    assert 20 * 0.48 * 0.98 < run.waste_kwh[0] < 24 * 0.48 * 1.02


def test_lights_left_on_in_an_empty_zone_and_cop_drift() -> None:
    faults = [
        BasFault(equipment="light-a", kind="lights_empty_zone", magnitude=1.0, start=INDEX[0]),
        BasFault(equipment="hp-1", kind="cop_drift", magnitude=0.2, start=INDEX[0]),
    ]
    run = simulate_building(BAS, INDEX, TEMP, timezone=TZ, faults=faults)
    clean = simulate_building(BAS, INDEX, TEMP, timezone=TZ)
    p = run.points
    empty = p["light-a.occupied"] == 0.0
    assert (p["light-a.lights_kw"][empty] == 2.4 * 0.8).all()
    assert run.waste_kwh[0] == pytest.approx(empty.sum() * 1.92 * 0.25, rel=1e-12)
    heating = p["hp-1.thermal_kw"] > 0
    assert (p["hp-1.cop"][heating] / clean.points["hp-1.cop"][heating]).round(12).eq(0.8).all()
    # what the drift costs: thermal / (0.8 COP) - thermal / COP = 0.25 thermal / COP
    expected = (p["hp-1.electric_kw"] * 0.2).sum() * 0.25
    assert run.waste_kwh[1] == pytest.approx(expected, rel=1e-12)
    assert clean.waste_kwh == ()


def test_events_raise_the_fire_and_security_inputs() -> None:
    events = [
        BasEvent(equipment="fire-1", point="alarm", start=INDEX[4], end=INDEX[8]),
        BasEvent(equipment="sec-1", point="intrusion", start=INDEX[0], end=INDEX[1]),
    ]
    p = simulate_building(BAS, INDEX, TEMP, timezone=TZ, events=events).points
    assert p["fire-1.alarm"].sum() == 4 and p["fire-1.alarm"].iloc[4:8].eq(1.0).all()
    assert p["sec-1.intrusion"].sum() == 1 and p["fire-1.trouble"].sum() == 0
    assert p["sec-1.armed"].iloc[0] == 1.0  # armed outside the occupied hours


def test_commands_are_range_checked_and_change_the_plant() -> None:
    plant, twin = BuildingPlant(BAS, timezone=TZ), BuildingPlant(BAS, timezone=TZ)
    t = INDEX[40].to_pydatetime()  # 11:00 local, occupied
    plant.step(t, 900.0, 5.0)
    twin.step(t, 900.0, 5.0)
    before = plant.read()
    bad: list[tuple[str, float]] = [
        ("ahu-9.fan_speed_pct", 50.0),
        ("ahu-1.nothing", 1.0),
        ("ahu-1.fan_kw", 1.0),
        ("ahu-1.fan_speed_pct", math.nan),
        ("ahu-1.fan_speed_pct", math.inf),
        ("ahu-1.fan_speed_pct", 100.5),
        ("hp-1.mode", 2.5),
        ("hp-1.mode", 4.0),
        ("sec-1.armed", 0.5),
        ("fire-1.alarm", 1.0),
    ]
    for name, value in bad:
        with pytest.raises(CommandError):
            plant.command(name, value)
    assert plant.read() == before
    plant.step(t, 900.0, 5.0)
    twin.step(t, 900.0, 5.0)
    assert plant.read() == twin.read()
    with pytest.raises(CommandError):
        plant.command("ahu-1.fan_speed_pct", "50")  # type: ignore[arg-type]
    plant.command("ahu-1.fan_speed_pct", np.float32(50.0))  # type: ignore[arg-type]
    plant.command("light-a.scene", 2.0)
    plant.step(t, 900.0, 5.0)
    after = plant.read()
    assert after["ahu-1.fan_speed_pct"] == 50.0
    assert after["ahu-1.fan_kw"] == pytest.approx(7.5 * 0.125, rel=1e-3)
    assert after["light-a.scene"] == 2.0
    assert after["light-a.lights_kw"] in (0.0, pytest.approx(2.4 * 0.4))


def test_bad_scenarios_and_inputs_are_refused() -> None:
    with pytest.raises(OpenMegError, match="needs a heat_pump"):
        BuildingPlant(
            BAS,
            timezone=TZ,
            faults=[BasFault(equipment="ahu-1", kind="cop_drift", magnitude=0.2, start=INDEX[0])],
        )
    plant = BuildingPlant(BAS, timezone=TZ)
    with pytest.raises(OpenMegError):
        plant.step(INDEX[0].to_pydatetime(), 900.0, math.nan)
    with pytest.raises(OpenMegError):
        simulate_building(BAS, INDEX, TEMP[:-1], timezone=TZ)


def test_the_scenarios_faults_go_to_their_bas() -> None:
    from openmeg.core.bas_scenario import scenario_of
    from openmeg.core.site import load_site

    site = load_site("demo")
    start = INDEX[0]
    faults = [
        BasFault(equipment="hp-1", kind="cop_drift", magnitude=0.2, start=start),
        BasFault(equipment="ahu-lc", kind="fan_after_hours", magnitude=1.0, start=start),
        BasFault(equipment="light-meeting", kind="lights_empty_zone", magnitude=1, start=start),
    ]
    events = [BasEvent(equipment="fire-lc", point="trouble", start=start, end=INDEX[2])]
    split = scenario_of(site.bas, faults, events)
    assert [f.equipment for f in split["bas-office"][0]] == ["hp-1", "light-meeting"]
    assert [f.equipment for f in split["bas-linden"][0]] == ["ahu-lc"]
    assert [e.equipment for e in split["bas-linden"][1]] == ["fire-lc"]
    for bas in site.bas:
        own_faults, own_events = split[bas.id]
        BuildingPlant(bas, timezone=TZ, faults=own_faults, events=own_events)
    stray = BasFault(equipment="hp-9", kind="cop_drift", magnitude=0.2, start=INDEX[0])
    with pytest.raises(ValueError, match="'hp-9' is in no BAS"):
        scenario_of(site.bas, [stray], [])
    twice = BasSystem.model_validate({**BAS.model_dump(), "id": "bas-u", "device_instance": 8})
    doubt = BasFault(equipment="hp-1", kind="cop_drift", magnitude=0.2, start=INDEX[0])
    with pytest.raises(ValueError, match="give bas"):
        scenario_of([BAS, twice], [doubt], [])
    sure = doubt.model_copy(update={"bas": "bas-u"})
    assert scenario_of([BAS, twice], [sure], [])["bas-u"][0] == (sure,)
    with pytest.raises(OpenMegError, match="given to the BAS bas-t"):
        BuildingPlant(BAS, timezone=TZ, faults=[sure])


def test_held_points_follow_the_command_until_relinquished() -> None:
    plant = BuildingPlant(BAS, timezone=TZ)
    night = INDEX[4].to_pydatetime()  # 02:00 local: the fan is off by its schedule
    plant.step(night, 900.0, 0.0)
    assert plant.read()["ahu-1.fan_on"] == 0.0 and plant.read()["hp-1.mode"] == 2.0
    plant.command("ahu-1.fan_on", 1.0)
    plant.command("hp-1.mode", 1.0)
    plant.step(night, 900.0, 0.0)
    held = plant.read()
    assert held["ahu-1.fan_on"] == 1.0 and held["ahu-1.fan_kw"] > 0
    assert (held["hp-1.mode"], held["hp-1.electric_kw"]) == (1.0, 0.0)
    assert held["ahu-1.space_temp_c"] < 16.0  # nobody heats it
    plant.command("hp-1.water_setpoint_c", 50.0)
    plant.relinquish("ahu-1.fan_on")
    plant.relinquish("hp-1.mode")
    with pytest.raises(CommandError, match="relinquished"):
        plant.relinquish("ahu-1.fan_speed_pct")
    plant.step(night, 900.0, 0.0)
    free = plant.read()
    assert (free["ahu-1.fan_on"], free["hp-1.mode"], free["hp-1.water_temp_c"]) == (0.0, 2.0, 50.0)
    assert free["ahu-1.space_temp_c"] == 16.0
