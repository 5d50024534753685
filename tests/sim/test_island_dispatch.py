"""Island operation uses what it has: the dispatchable units are raised before any load is shed,
and a battery's outage reserve is kept while grid-connected and released off the grid.

A tiny MEG with hand-computable numbers: constant loads (critical 20 kW, A 30 kW shed first, B
30 kW), a CHP that is not grid-forming (20..50 kW, 10 kW/min, off before the outage, no heat-led
controller), a fuel cell (5..25 kW, set to 10 kW, 5 kW/min), a grid-forming battery (100 kWh,
60 kW, lossless, 0.5 % droop: 240 kW/Hz, so no step here is large enough for the frequency to
shed load), no renewables, no network losses, a closed-transition switch, one-minute steps.
"""

from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
import yaml

from openmeg.core.site import Site
from openmeg.sim.engine import Engine
from openmeg.sim.grid import kernel
from openmeg.sim.scenario import make_engine
from openmeg.sim.summary import balance_residual_kw, outage_unserved_kwh

START = datetime(2026, 2, 10, 12, 50, tzinfo=UTC)
LOSS = START + timedelta(minutes=10)  # step 10
BACK = LOSS + timedelta(minutes=5)  # step 15
K_LOSS = 10
DEMAND_KW = (20.0, 30.0, 30.0)  # critical, A (shed priority 10), B (shed priority 20)


TINY = """
site: {id: tiny, name: tiny, timezone: UTC, latitude: 36.1, longitude: -79.95}
network: {catalogue: cigre_lv}
weather_tmy3: 723170TYA.CSV
utility:
  pcc_bus: Bus 0
  import_limit_kw: 800.0
  export_limit_kw: 400.0
  transfer_switch: ctts
  outages: [{start: '2026-02-10T13:00:00Z', end: '2026-02-10T13:05:00Z'}]
customers: []
meters: []
devices:
- {id: load-crit, kind: load, bus: Bus R1, owner: community, annual_kwh: 1000, profile: g0,
   critical: true, sheddable: false}
- {id: load-a, kind: load, bus: Bus R1, owner: community, annual_kwh: 1000, profile: g0,
   shed_priority: 10}
- {id: load-b, kind: load, bus: Bus R1, owner: community, annual_kwh: 1000, profile: g0,
   shed_priority: 20}
- {id: hs1, kind: heat_storage, bus: Bus R1, owner: community, capacity_kwh: 100, boiler_kw: 100}
- {id: chp1, kind: chp, bus: Bus R1, owner: community, p_el_max_kw: 50, p_el_min_kw: 20,
   eta_el: 0.3, eta_th: 0.5, ramp_kw_per_min: 10, min_up_min: 60, min_down_min: 30,
   heat_storage: hs1, grid_forming: false}
- {id: fc1, kind: fuel_cell, bus: Bus R1, owner: community, p_max_kw: 25, p_min_kw: 5,
   p_set_kw: 10, eta_el: 0.5, ramp_kw_per_min: 5}
- {id: bess, kind: battery, bus: Bus R1, owner: community, capacity_kwh: 100,
   p_charge_max_kw: 60, p_discharge_max_kw: 60, eta_charge: 1.0, eta_discharge: 1.0,
   soc_min: 0.1, soc_max: 0.9, grid_forming: true, droop_pct: 0.5}
controllers: [{kind: self_consumption, priority: 20}]
"""


def _site(*, soc_initial: float, reserve: float | None) -> Site:
    raw = yaml.safe_load(TINY)
    raw["devices"][-1]["soc_initial"] = soc_initial
    if reserve is not None:
        raw["devices"][-1]["outage_reserve_soc"] = reserve
    return Site.model_validate(raw)


def _run(*, soc_initial: float, reserve: float | None = None) -> Engine:
    engine = make_engine(
        _site(soc_initial=soc_initial, reserve=reserve), start=START, days=20 / 1440, step_s=60
    )
    engine.plant.load_dem[:] = np.array(DEMAND_KW)[:, None]
    engine.state.loss_ratio = 0.0
    engine.advance(engine.plant.n_steps)
    return engine


def test_no_load_is_shed_while_a_dispatchable_unit_has_headroom() -> None:
    """The battery enters the outage empty (soc_min): the island stands on the CHP and the cell.

    Step 10 (islanded): the CHP may start (off for more than its 30 min) and goes straight to its
    minimum load, 20 kW; the cell ramps 10 -> 15 kW. 80 kW of load against 35 kW: A and B are
    shed, the battery charges the 15 kW left (soc 0.1 + 15/60/100 = 0.1025).
    Step 11: CHP 20 -> 30, cell 15 -> 20; the battery may give 0.0025 * 100 * 60 = 15 kW; B
    (the more important) fits: 50 kW served, 50 kW made, the battery idles.
    Step 12: CHP 40, cell 25 (its maximum); A needs 30 kW on top of the 15 kW surplus, more than
    0.9 x 15 kW of headroom: it waits, the battery charges 15 kW (soc 0.105).
    Step 13: CHP 50 (its maximum); the battery may give 30 kW; A is back, the battery gives 5 kW.
    """
    e = _run(soc_initial=0.1)
    o, k = e.out, K_LOSS
    assert np.all(o.mode[k : k + 5] == kernel.ISLAND) and o.mode[k - 1] == kernel.GRID
    np.testing.assert_allclose(
        o.load[:, k : k + 5].T,
        [
            [20, 0, 0],
            [20, 0, 30],
            [20, 0, 30],
            [20, 30, 30],
            [20, 30, 30],
        ],
        atol=1e-9,
    )
    np.testing.assert_allclose(o.chp[0, k : k + 5], [20, 30, 40, 50, 50], atol=1e-9)
    np.testing.assert_allclose(o.fc[0, k : k + 5], [15, 20, 25, 25, 25], atol=1e-9)
    np.testing.assert_allclose(o.bat[0, k : k + 5], [-15, 0, -15, 5, 5], atol=1e-9)
    np.testing.assert_allclose(o.soc[0, k : k + 3], [0.1025, 0.1025, 0.105], atol=1e-12)
    # before the outage: the CHP off, the cell at its setpoint, the empty battery idle
    assert o.chp[0, k - 1] == 0.0 and o.fc[0, k - 1] == 10.0 and o.bat[0, k - 1] == 0.0
    # on every step with load shed, every unit is at its maximum or at what its ramp allows
    shed = np.flatnonzero((e.plant.load_dem - o.load).sum(axis=0) > 1e-9)
    assert list(shed) == [10, 11, 12]
    for s in shed:
        chp_most = 20.0 if o.chp[0, s - 1] == 0.0 else min(50.0, o.chp[0, s - 1] + 10.0)
        assert o.chp[0, s] == pytest.approx(chp_most)
        assert o.fc[0, s] == pytest.approx(min(25.0, o.fc[0, s - 1] + 5.0))
    # (60 + 30 + 30) kW for a minute each
    assert outage_unserved_kwh(e) == {LOSS.isoformat(): pytest.approx(2.0, abs=1e-9)}
    assert np.abs(balance_residual_kw(e)).max() < 1e-9


def test_the_outage_reserve_is_kept_on_the_grid_and_released_off_it() -> None:
    """Reserve 0.5, the battery at 0.505: self-consumption gives what takes it to the reserve,
    0.005 * 100 kWh in a minute = 30 kW, then nothing; islanded it covers the load the CHP (20
    kW at its start) and the cell (15 kW) cannot: 80 - 35 = 45 kW, below its reserve; back on the
    grid it stays below the reserve and gives nothing."""
    e = _run(soc_initial=0.505, reserve=0.5)
    o, k = e.out, K_LOSS
    assert o.bat[0, 0] == pytest.approx(30.0) and o.soc[0, 0] == pytest.approx(0.5)
    assert np.all(o.bat[0, 1:k] == 0.0) and np.all(o.soc[0, 1:k] == o.soc[0, 0])
    np.testing.assert_allclose(o.grid[1:k], 70.0)  # 80 kW of load less the cell's 10 kW
    assert o.bat[0, k] == pytest.approx(45.0)
    assert o.soc[0, k] == pytest.approx(0.5 - 45.0 / 60.0 / 100.0)
    assert np.all(o.load[:, k:] == e.plant.load_dem[:, k:])  # nothing shed
    back = e.plant.index.get_loc(BACK)
    assert o.mode[back] == kernel.GRID and o.soc[0, back - 1] < 0.5
    assert np.all(o.bat[0, back:] <= 0.0)
