"""Device physics on tiny hand-computed cases."""

import numpy as np
import pytest

from openmeg.der.wind_curves import library_curve
from openmeg.sim.physics.battery import battery_limits_kw, battery_step
from openmeg.sim.physics.chp import chp_heat_kw, chp_step, fuel_kw, ramp_toward
from openmeg.sim.physics.flexible import Session, ev_demand_kw, shiftable_demand_kw
from openmeg.sim.physics.heat import heat_storage_step
from openmeg.sim.physics.meters import interval_energy_kwh, registers_kwh
from openmeg.sim.physics.pv import pv_ac_kw
from openmeg.sim.physics.sensors import sensor_readings
from openmeg.sim.physics.wind import hub_wind_speed_m_s, power_from_curve_kw

BAT = dict(
    capacity_kwh=10.0,
    p_charge_max_kw=5.0,
    p_discharge_max_kw=4.0,
    eta_charge=0.9,
    eta_discharge=0.8,
    soc_min=0.1,
    soc_max=0.9,
)


def _bat(soc: float, p: float, dt_h: float = 0.25) -> tuple[float, float]:
    return battery_step(soc, p, dt_h, *BAT.values())  # type: ignore[arg-type]


def test_battery_charge_and_discharge_efficiency() -> None:
    p, soc = _bat(0.5, -4.0)  # 4 kW for 15 min = 1 kWh in, 0.9 kWh stored
    assert p == -4.0 and soc == pytest.approx(0.59, abs=1e-12)
    p, soc = _bat(0.5, 2.0)  # 0.5 kWh out costs 0.625 kWh stored
    assert p == 2.0 and soc == pytest.approx(0.4375, abs=1e-12)


def test_battery_power_and_soc_limits() -> None:
    assert _bat(0.5, -50.0)[0] == -5.0
    assert _bat(0.5, 50.0)[0] == 4.0
    # 0.2 kWh of room at soc 0.88 -> 0.2/0.9/0.25 = 0.888.. kW of charge
    p, soc = _bat(0.88, -5.0)
    assert p == pytest.approx(-0.2 / 0.9 / 0.25) and soc == pytest.approx(0.9)
    # 0.05 kWh above soc_min -> 0.05*0.8/0.25 = 0.16 kW of discharge
    p, soc = _bat(0.105, 4.0)
    assert p == pytest.approx(0.16) and soc == pytest.approx(0.1)
    assert battery_limits_kw(0.1, 0.25, *BAT.values()) == (5.0, 0.0)  # type: ignore[arg-type]


def test_battery_random_requests_never_leave_limits() -> None:
    rng = np.random.default_rng(1)
    soc = 0.5
    for req in rng.uniform(-20, 20, 5000):
        p, soc = _bat(soc, float(req), 1 / 60)
        assert -5.0 <= p <= 4.0
        assert 0.1 - 1e-12 <= soc <= 0.9 + 1e-12


def test_chp_min_load_ramp_and_min_up_down() -> None:
    args = dict(
        dt_min=1.0,
        p_min_kw=25.0,
        p_max_kw=50.0,
        ramp_kw_per_min=10.0,
        min_up_min=3.0,
        min_down_min=2.0,
    )
    on, t, p = chp_step(False, 5.0, 0.0, 40.0, **args)  # start: straight to minimum load
    assert (on, t, p) == (True, 1.0, 25.0)
    on, t, p = chp_step(on, t, p, 50.0, **args)  # ramp +10 per minute
    assert (on, t, p) == (True, 2.0, 35.0)
    on, t, p = chp_step(on, t, p, 0.0, **args)  # asks to stop after 2 min: min up is 3
    assert (on, t, p) == (True, 3.0, 25.0)
    on, t, p = chp_step(on, t, p, 0.0, **args)
    assert (on, t, p) == (False, 1.0, 0.0)
    on, t, p = chp_step(on, t, p, 40.0, **args)  # min down 2 min not yet over
    assert (on, t, p) == (False, 2.0, 0.0)
    on, t, p = chp_step(on, t, p, 40.0, **args)
    assert (on, t, p) == (True, 1.0, 25.0)
    assert chp_heat_kw(33.0, 0.33, 0.55) == pytest.approx(55.0)
    assert fuel_kw(33.0, 0.33) == pytest.approx(100.0)
    assert ramp_toward(10.0, 30.0, 5.0, 0.0, 25.0) == 15.0


def test_heat_storage_losses_boiler_and_dump() -> None:
    # 100 kWh, 1 %/h loss over 1 h = 1 kWh; +20 in -30 out -> 89 kWh
    e, loss, boiler, dumped, unserved = heat_storage_step(100.0, 20.0, 30.0, 1.0, 200.0, 0.01, 50.0)
    assert (e, loss, boiler, dumped, unserved) == pytest.approx((89.0, 1.0, 0.0, 0.0, 0.0))
    e, loss, boiler, dumped, unserved = heat_storage_step(10.0, 0.0, 100.0, 1.0, 200.0, 0.0, 50.0)
    assert (e, boiler, unserved) == pytest.approx((0.0, 50.0, 40.0))
    e, loss, boiler, dumped, unserved = heat_storage_step(190.0, 30.0, 0.0, 1.0, 200.0, 0.0, 50.0)
    assert (e, dumped) == pytest.approx((200.0, 20.0))


def test_meters_registers_and_intervals() -> None:
    net = np.array([4.0, 4.0, -2.0, 0.0, 8.0, 8.0, 8.0, 8.0])  # kW at 1-minute steps... dt 1/4 h
    imp, exp = registers_kwh(net, 0.25)
    assert imp[-1] == pytest.approx(10.0) and exp[-1] == pytest.approx(0.5)
    i15, e15 = interval_energy_kwh(net, 0.25, 4)
    assert i15.tolist() == pytest.approx([2.0, 8.0]) and e15.tolist() == pytest.approx([0.5, 0.0])


def test_pv_dc_rating_at_standard_conditions_and_clipping() -> None:
    ac = pv_ac_kw(
        np.array([1000.0, 0.0, 1200.0]),
        np.array([25.0, 25.0, 25.0]),
        dc_kwp=8.0,
        inverter_kw=10.0,
        system_losses=0.0,
        gamma_pdc_per_c=-0.004,
    )
    # PVWatts inverter at pdc = 8 kW of pdc0 = 10/0.96 kW: efficiency from its curve
    zeta = 8.0 / (10.0 / 0.96)
    eta = 0.96 / 0.9637 * (-0.0162 * zeta - 0.0059 / zeta + 0.9858)
    assert ac[0] == pytest.approx(8.0 * eta, rel=1e-9)
    assert ac[1] == 0.0
    clipped = pv_ac_kw(
        np.array([1000.0]),
        np.array([25.0]),
        dc_kwp=12.0,
        inverter_kw=10.0,
        system_losses=0.0,
        gamma_pdc_per_c=-0.004,
    )
    assert clipped[0] == 10.0


def test_wind_power_curve_and_log_profile() -> None:
    speeds, powers, nominal = library_curve("E-53/800")
    assert nominal == 800.0
    p = power_from_curve_kw(np.array([0.5, 5.0, 5.5, 30.0]), np.array(speeds), np.array(powers))
    assert p.tolist() == pytest.approx([0.0, 77.0, (77.0 + 141.0) / 2, 0.0])
    v = hub_wind_speed_m_s(
        np.array([5.0]), measured_at_m=10, hub_height_m=100, roughness_length_m=0.1
    )
    assert v[0] == pytest.approx(5.0 * np.log(1000) / np.log(100))
    with pytest.raises(ValueError, match="not in windpowerlib"):
        library_curve("no-such-turbine")


def test_ev_sessions_charge_until_full_or_departure() -> None:
    s = [
        Session(arrival_step=2, dwell_steps=10, energy_kwh=2.5),  # 2 full steps at 1 kWh + 0.5
        Session(arrival_step=5, dwell_steps=3, energy_kwh=5.0),  # charger busy: leaves
        Session(arrival_step=13, dwell_steps=2, energy_kwh=9.0),
    ]  # leaves after 2 steps
    p = ev_demand_kw(s, 20, 0.25, 4.0)
    assert p.tolist() == [0, 0, 4, 4, 2, 0, 0, 0, 0, 0, 0, 0, 0, 4, 4, 0, 0, 0, 0, 0]


def test_shiftable_load_starts_where_cost_is_least() -> None:
    hours = np.arange(48) % 24 * 1.0
    day = np.arange(48) // 24
    cost = np.ones(48)
    cost[12:14] = -5.0  # a sunny midday on day 0
    p = shiftable_demand_kw(
        hours, day, p_kw=2.0, run_steps=2, window_start_h=9, window_end_h=17, cost=cost
    )
    assert np.flatnonzero(p).tolist() == [12, 13, 33, 34]
    assert p.sum() == 8.0


def test_sensors_follow_loading() -> None:
    t, v, n = sensor_readings(
        np.array([0.0, 1.0]),
        np.array([20.0, 20.0]),
        temp_rise_c=40,
        vibration_full_mm_s=5.0,
        noise_full_db=80.0,
        seed=0,
    )
    assert t[1] - t[0] == pytest.approx(40, abs=1.5)
    assert v[0] == pytest.approx(0.5, abs=0.1) and v[1] == pytest.approx(5.0, abs=0.1)
    assert n[0] == pytest.approx(35, abs=1.5) and n[1] == pytest.approx(80, abs=1.5)
