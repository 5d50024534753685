"""The efficiency diagnosis: each simulated fault found with the energy the simulator knows it
wasted (within 5 %), nothing found on a fault-free run, and the rules on hand-computed rows."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from openmeg.core.bas_scenario import BasFault
from openmeg.core.building_automation import BasSystem
from openmeg.core.errors import OpenMegError
from openmeg.core.site import load_site
from openmeg.customer.efficiency import DiagnosisLimits, diagnose
from openmeg.customer.efficiency_models import expected_cop
from openmeg.sim.physics.building import BuildingRun, simulate_building
from openmeg.sim.weather import load_weather

TZ = "Europe/Rome"
SITE = load_site("demo")
WEATHER = "pvgis_tmy_45.000_8.000_2005_2016.csv"


def _of(bas: BasSystem, kind: str, n: int = 0) -> str:
    return [e.id for e in bas.equipment if e.kind == kind][n]


def _run(
    bas: BasSystem, month: int, faults: list[BasFault], **kw: object
) -> tuple[BuildingRun, pd.DataFrame]:
    index = pd.date_range(f"2026-{month:02d}-05", periods=96 * 14, freq="15min", tz="UTC")
    temp = load_weather(WEATHER, index).temp_air_c
    run = simulate_building(bas, index, temp, timezone=TZ, faults=faults, **kw)  # type: ignore[arg-type]
    # the points as the wire carries them: BACnet REALs (float32)
    return run, run.points.astype(np.float32).astype(float)


def _faults(bas: BasSystem, month: int) -> list[BasFault]:
    return [
        BasFault(
            equipment=_of(bas, "heat_pump"),
            kind="cop_drift",
            magnitude=0.2,
            start=f"2026-{month:02d}-08T09:30:00Z",
            ramp_days=1.0,
        ),
        BasFault(
            equipment=_of(bas, "ahu"),
            kind="fan_after_hours",
            magnitude=1.0,
            start=f"2026-{month:02d}-10T00:00:00Z",
            end=f"2026-{month:02d}-15T06:00:00Z",
        ),
        BasFault(
            equipment=_of(bas, "lighting_zone", 1),
            kind="lights_empty_zone",
            magnitude=1.0,
            start=f"2026-{month:02d}-07T13:00:00Z",
        ),
    ]


@pytest.mark.parametrize("month", [1, 7])
@pytest.mark.parametrize("bas", SITE.bas, ids=lambda b: b.id)
def test_each_simulated_fault_is_found_with_what_it_cost(bas: BasSystem, month: int) -> None:
    faults = _faults(bas, month)
    run, points = _run(bas, month, faults)
    found = diagnose(bas, points, timezone=TZ, price_per_kwh=0.25)
    by_kind = {f.kind: f for f in found}
    assert set(by_kind) == {"cop_drift", "fan_after_hours", "lights_empty_zone"}
    for fault, truth in zip(faults, run.waste_kwh, strict=True):
        got = by_kind[fault.kind]
        assert got.equipment == fault.equipment
        assert truth > 50.0  # a fault worth finding
        assert abs(got.kwh - truth) <= 0.05 * truth, (fault.kind, got.kwh, truth)
        assert got.cost == pytest.approx(0.25 * got.kwh, rel=1e-9)
        assert got.start >= fault.start
    cop = by_kind["cop_drift"].evidence
    assert cop["cop_loss"] == pytest.approx(0.2, abs=0.01)


@pytest.mark.parametrize("month", [1, 4, 7])
@pytest.mark.parametrize("bas", SITE.bas, ids=lambda b: b.id)
def test_nothing_is_found_on_a_fault_free_run(bas: BasSystem, month: int) -> None:
    _, points = _run(bas, month, [])
    assert diagnose(bas, points, timezone=TZ, price_per_kwh=0.25) == []


@pytest.mark.parametrize("bas", SITE.bas, ids=lambda b: b.id)
def test_nothing_is_found_in_a_fault_free_year(bas: BasSystem) -> None:
    index = pd.date_range("2026-01-01", periods=365 * 96, freq="15min", tz="UTC")
    run = simulate_building(bas, index, load_weather(WEATHER, index).temp_air_c, timezone=TZ)
    assert diagnose(bas, run.points, timezone=TZ, price_per_kwh=0.25) == []


def test_money_follows_the_price_series() -> None:
    bas = SITE.bas[0]
    faults = _faults(bas, 1)[2:]
    run, points = _run(bas, 1, faults)
    hour = points.index.tz_convert(TZ).hour
    prices = pd.Series(np.where((hour >= 8) & (hour < 20), 0.30, 0.10), index=points.index)
    (found,) = diagnose(bas, points, timezone=TZ, price_per_kwh=prices)
    want = float((run.waste_kw[0] * 0.25 * prices).sum())
    assert found.cost == pytest.approx(want, rel=1e-6)
    assert 0.10 * found.kwh < found.cost < 0.30 * found.kwh


def test_cooling_the_supply_air_while_heating_is_found() -> None:
    bas = SITE.bas[0]
    ahu, hp = _of(bas, "ahu"), _of(bas, "heat_pump")
    clean, _ = _run(bas, 1, [])
    run, points = _run(bas, 1, [], settings={f"{ahu}.supply_temp_setpoint_c": 14.0})
    (found,) = diagnose(bas, points, timezone=TZ, price_per_kwh=0.25)
    assert (found.kind, found.equipment) == ("simultaneous_heating_cooling", ahu)
    extra = float((run.points[f"{hp}.electric_kw"] - clean.points[f"{hp}.electric_kw"]).sum())
    assert found.kwh == pytest.approx(extra * 0.25, rel=0.05)


TINY = BasSystem.model_validate(
    {
        "id": "bas-t",
        "premises": "office",
        "device_instance": 9,
        "equipment": [
            {"id": "ahu-1", "kind": "ahu", "rated_kw": 5.0, "area_m2": 100},
            {"id": "hp-1", "kind": "heat_pump", "rated_kw": 20.0, "cop_nominal": 3.6},
            {"id": "lz-1", "kind": "lighting_zone", "rated_kw": 2.0},
        ],
    }
)


def _tiny() -> pd.DataFrame:
    # four hours from 05:00 local (04:00 UTC in winter), occupied 06:00-08:00
    index = pd.date_range("2026-01-12T04:00Z", periods=4, freq="1h")
    row = {f"{e.id}.{p}": 0.0 for e in TINY.equipment for p in _names(e.kind)}
    frame = pd.DataFrame([row] * 4, index=index)
    frame["ahu-1.occupied_from_h"], frame["ahu-1.occupied_to_h"] = 6.0, 8.0
    frame["ahu-1.fan_speed_pct"] = 80.0
    frame["ahu-1.fan_on"] = [1.0, 1.0, 1.0, 1.0]
    frame["ahu-1.fan_kw"] = [2.5, 3.0, 3.0, 2.0]  # 05:00 and 08:00 are after hours
    frame["ahu-1.space_temp_c"] = frame["ahu-1.supply_temp_c"] = 20.0
    frame["lz-1.occupied"] = [0.0, 1.0, 1.0, 0.0]
    frame["lz-1.lights_kw"] = [0.0, 1.6, 1.6, 1.2]
    frame["lz-1.level_pct"] = [0.0, 80.0, 80.0, 60.0]
    # at the rating point (A7/W35) 36 kW of heat should take 10 kW: it takes 12.5 kW
    frame["hp-1.mode"] = [2.0, 2.0, 2.0, 1.0]
    frame["hp-1.water_temp_c"], frame["hp-1.outdoor_temp_c"] = 35.0, 7.0
    frame["hp-1.thermal_kw"] = [36.0, 36.0, 36.0, 0.0]
    frame["hp-1.electric_kw"] = [12.5, 12.5, 12.5, 0.0]
    return frame


def _names(kind: str) -> list[str]:
    from openmeg.core.building_automation import POINTS

    return [p.name for p in POINTS[kind]]


def test_rules_on_hand_computed_rows() -> None:
    assert expected_cop(3.6, np.array([True]), np.array([35.0]), np.array([7.0]))[0] == (
        pytest.approx(3.6, rel=1e-12)
    )
    found = {f.kind: f for f in diagnose(TINY, _tiny(), timezone=TZ, price_per_kwh=0.2)}
    assert set(found) == {"cop_drift", "fan_after_hours", "lights_empty_zone"}
    assert found["fan_after_hours"].kwh == pytest.approx(2.5 + 2.0)
    assert found["fan_after_hours"].evidence["hours_after_hours_h"] == 2.0
    assert found["lights_empty_zone"].kwh == pytest.approx(1.2)
    assert found["lights_empty_zone"].cost == pytest.approx(0.24)
    assert found["cop_drift"].kwh == pytest.approx(3 * 2.5)
    assert found["cop_drift"].evidence["observed_cop"] == pytest.approx(36 / 12.5)
    assert found["cop_drift"].evidence["expected_cop"] == pytest.approx(3.6)
    # within the tolerance nothing is reported
    quiet = DiagnosisLimits(cop_tolerance=0.25, min_kwh=100.0)
    assert diagnose(TINY, _tiny(), timezone=TZ, price_per_kwh=0.2, limits=quiet) == []


def test_malformed_series_are_refused() -> None:
    good = _tiny()
    nan = good.copy()
    nan.iloc[1, 0] = math.nan
    cases = {
        "non-finite": nan,
        "lack": good.drop(columns=["hp-1.cop"]),
        "aware": good.tz_localize(None),
        "regular": good.iloc[[0, 1, 3]],
    }
    for message, frame in cases.items():
        with pytest.raises(OpenMegError, match=message):
            diagnose(TINY, frame, timezone=TZ, price_per_kwh=0.2)
    with pytest.raises(OpenMegError, match="time zone"):
        diagnose(TINY, good, timezone="Mars/Olympus", price_per_kwh=0.2)
    with pytest.raises(OpenMegError, match="price"):
        diagnose(TINY, good, timezone=TZ, price_per_kwh=math.inf)


def _noisy(points: pd.DataFrame, seed: int) -> pd.DataFrame:
    """Meters within 2 % and thermometers within 0.3 K (one standard deviation)."""
    rng = np.random.default_rng(seed)
    out = points.copy()
    for c in out.columns:
        if c.endswith(("thermal_kw", "electric_kw")):
            out[c] = out[c] * (1.0 + 0.02 * rng.standard_normal(len(out)))
        elif c.endswith(("water_temp_c", "outdoor_temp_c")):
            out[c] = out[c] + 0.3 * rng.standard_normal(len(out))
    return out


@pytest.mark.parametrize("month", [1, 7])
def test_noisy_meters_still_give_the_drift_and_no_false_finding(month: int) -> None:
    bas = SITE.bas[0]
    faults = _faults(bas, month)[:1]
    run, points = _run(bas, month, faults)
    (found,) = diagnose(bas, _noisy(points, month), timezone=TZ, price_per_kwh=0.25)
    assert found.kind == "cop_drift"
    assert abs(found.kwh - run.waste_kwh[0]) <= 0.05 * run.waste_kwh[0]
    _, clean = _run(bas, month, [])
    assert diagnose(bas, _noisy(clean, month + 10), timezone=TZ, price_per_kwh=0.25) == []


def test_points_read_from_the_stepped_plant_give_the_same_findings() -> None:
    from openmeg.sim.physics.building import BuildingPlant

    bas = SITE.bas[1]
    faults = _faults(bas, 1)
    run, _ = _run(bas, 1, faults)
    plant = BuildingPlant(bas, timezone=TZ, faults=faults)
    temp = load_weather(WEATHER, run.points.index).temp_air_c
    rows = []
    for t, outdoor in zip(run.points.index, temp, strict=True):
        plant.step(t.to_pydatetime(), 900.0, float(outdoor))
        rows.append(plant.read())
    points = pd.DataFrame(rows, index=run.points.index).astype(np.float32).astype(float)
    found = {f.kind: f for f in diagnose(bas, points, timezone=TZ, price_per_kwh=0.25)}
    for fault, truth in zip(faults, run.waste_kwh, strict=True):
        assert abs(found[fault.kind].kwh - truth) <= 0.05 * truth
