"""The whole simulated MEG in simulated time: energy conservation, limits, islanding."""

from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from openmeg.core.site import Outage, Site, load_site
from openmeg.sim.engine import Engine
from openmeg.sim.grid import kernel
from openmeg.sim.scenario import simulate
from openmeg.sim.summary import balance_residual_kw, summarize

LOSS = datetime(2026, 2, 10, 13, 0, tzinfo=UTC)
BACK = datetime(2026, 2, 10, 17, 0, tzinfo=UTC)


def _site(*, outages: tuple[Outage, ...], **utility: object) -> Site:
    site = load_site("demo")
    assert site.scenario is not None
    return site.model_copy(
        update={
            "utility": site.utility.model_copy(update=utility),
            "scenario": site.scenario.model_copy(update={"outages": outages}),
        }
    )


@pytest.fixture(scope="module")
def island_run() -> Engine:
    site = _site(outages=(Outage(start=LOSS, end=BACK),))
    return simulate(site, start=datetime(2026, 2, 10, tzinfo=UTC), days=1, step_s=60)


def test_energy_is_conserved_every_step(island_run: Engine) -> None:
    dt_h = island_run.plant.dt_h
    residual_kwh = np.abs(balance_residual_kw(island_run)) * dt_h
    assert residual_kwh.max() < 1e-9
    summary = summarize(island_run)
    assert summary["balance_error_kwh"] < 1e-9
    demand = island_run.plant.load_dem.sum() * dt_h
    assert summary["load_kwh"] == pytest.approx(demand, abs=1e-6)
    assert summary["served_kwh"] + summary["unserved_kwh"] == pytest.approx(demand, abs=1e-6)


def test_batteries_stay_within_soc_and_power_limits(island_run: Engine) -> None:
    p, o = island_run.plant, island_run.out
    for i in range(len(p.bat_ids)):
        pc, pd = p.bat_par[i, kernel.B_PC], p.bat_par[i, kernel.B_PD]
        smin, smax = p.bat_par[i, kernel.B_SMIN], p.bat_par[i, kernel.B_SMAX]
        assert o.soc[i].min() >= smin - 1e-12 and o.soc[i].max() <= smax + 1e-12
        assert o.bat[i].min() >= -pc - 1e-9 and o.bat[i].max() <= pd + 1e-9


def test_islanding_shed_critical_served_and_resync(island_run: Engine) -> None:
    idx, o, p = island_run.plant.index, island_run.out, island_run.plant
    k_loss = idx.get_loc(LOSS)
    k_back = idx.get_loc(BACK)
    assert (o.mode[:k_loss] == kernel.GRID).all()
    assert (o.mode[k_loss:k_back] == kernel.ISLAND).all()
    assert (o.mode[k_back:] == kernel.GRID).all()
    assert np.all(o.grid[k_loss:k_back] == 0.0)
    # frequency: after the shedding of each step it lies in 49.5 .. 50.5 Hz
    f = o.freq[k_loss:k_back]
    assert f.min() >= 49.5 and f.max() <= 50.5
    assert np.all(o.freq[:k_loss] == 50.0)
    # something was shed at the start of the island, and never a critical load
    crit = ~np.isfinite(p.load_prio)
    dem, served = p.load_dem, o.load
    shed = dem[:, k_loss:k_back] - served[:, k_loss:k_back]
    assert shed[~crit].sum() > 0
    transfer = island_run.transfer_frac
    np.testing.assert_allclose(served[crit, k_loss], dem[crit, k_loss] * (1 - transfer))
    np.testing.assert_allclose(served[crit, k_loss + 1 : k_back], dem[crit, k_loss + 1 : k_back])
    # shed loads come back during the island when the units have headroom
    was_shed = shed[~crit] > 1e-9
    assert np.any(was_shed[:, :-1] & ~was_shed[:, 1:])
    codes = [e["code"] for e in island_run.event_list()]
    assert codes == ["islanded", "resynchronised"]


def test_island_sheds_only_what_the_raised_units_cannot_carry(island_run: Engine) -> None:
    """On every island step with load shed, the CHP and the fuel cell are at their maximum or as
    far up as their ramp allows (the open-transition break of the first step is not shedding)."""
    p, o = island_run.plant, island_run.out
    chp = p.chp_par[0]
    fc = p.fc_par[0]
    k_loss = p.index.get_loc(LOSS)
    brk = np.zeros(p.n_steps)
    brk[k_loss] = island_run.transfer_frac
    shed = (p.load_dem * (1 - brk) - o.load).sum(axis=0) > 1e-9
    steps = np.flatnonzero(shed & (o.mode == kernel.ISLAND))
    assert len(steps) > 0
    for k in steps:
        prev = o.chp[0, k - 1]
        dt_min = p.dt_h * 60.0
        most = chp[kernel.C_PMIN] if prev == 0.0 else prev + chp[kernel.C_RAMP] * dt_min
        assert o.chp[0, k] == pytest.approx(min(chp[kernel.C_PMAX], most))
        most = o.fc[0, k - 1] + fc[kernel.F_RAMP] * dt_min
        assert o.fc[0, k] == pytest.approx(min(fc[kernel.F_PMAX], most))


def test_resync_waits_for_the_sync_check() -> None:
    site = _site(outages=(Outage(start=LOSS, end=BACK),))
    sync = site.utility.sync_check.model_copy(update={"max_df_hz": 0.004})
    site = site.model_copy(update={"utility": site.utility.model_copy(update={"sync_check": sync})})
    engine = simulate(site, start=datetime(2026, 2, 10, 12, tzinfo=UTC), days=0.5, step_s=60)
    o = engine.out
    k_back = engine.plant.index.get_loc(BACK)
    k_sync = k_back + int(np.flatnonzero(o.mode[k_back:] == kernel.GRID)[0])
    assert abs(o.freq[k_sync - 1] - 50.0) <= 0.004
    waited = o.freq[k_back - 1 : k_sync - 1]
    assert np.all(np.abs(waited - 50.0) > 0.004)
    assert "resynchronised" in [e["code"] for e in engine.event_list()]


def test_grid_connected_day_uses_no_unserved_energy() -> None:
    engine = simulate(_site(outages=()), start=datetime(2026, 6, 1, tzinfo=UTC), days=1, step_s=60)
    s = summarize(engine)
    assert s["unserved_kwh"] == pytest.approx(0.0, abs=1e-9)
    assert s["islanded_hours"] == 0.0
    assert s["generation_kwh"] > 0 and s["balance_error_kwh"] < 1e-9
    assert s["power_flow"]["runs"] == 24
    assert 0.85 < s["power_flow"]["vm_min_pu"] <= 1.0


def test_ctts_transfers_without_a_break_and_ats_with_one() -> None:
    # 08:00 CET, before the factory's shift: the island carries every load, so that what the
    # open transition loses is all the step loses
    loss = datetime(2026, 2, 10, 7, tzinfo=UTC)
    runs = {}
    for switch in ("ats", "ctts"):
        site = _site(
            outages=(Outage(start=loss, end=loss + timedelta(hours=1)),),
            transfer_switch=switch,
            transfer_time_s=6.0,
        )
        runs[switch] = simulate(site, start=loss - timedelta(hours=1), days=0.125, step_s=60)
    for k in (runs["ats"].plant.index.get_loc(t) for t in (loss, loss + timedelta(hours=1))):
        dem = runs["ats"].plant.load_dem[:, k].sum()
        # 6 s of a 60 s step without supply: the open transition loses a tenth of the step
        assert runs["ats"].out.load[:, k].sum() == pytest.approx(dem * (1 - 0.1))
        assert runs["ctts"].out.load[:, k].sum() == pytest.approx(dem)


def test_meters_add_up_to_the_pcc_less_losses(island_run: Engine) -> None:
    from openmeg.sim.report import meter_intervals

    s = summarize(island_run)
    dt_h = island_run.plant.dt_h
    top = [m.id for m in island_run.site.meters if m.parent is None]
    net_meters = sum(s["meters"][m]["import_kwh"] - s["meters"][m]["export_kwh"] for m in top)
    net_pcc = float(island_run.out.grid.sum()) * dt_h - s["losses_kwh"]
    assert net_meters == pytest.approx(net_pcc, abs=1e-5)
    # a main meter measures its sub-meters too
    subs = [m.id for m in island_run.site.meters if m.parent == "m-bldg1"]
    common = -s["energy_kwh"]["load-bldg1-common"]
    assert s["meters"]["m-bldg1"]["import_kwh"] == pytest.approx(
        common + sum(s["meters"][m]["import_kwh"] for m in subs), abs=1e-5
    )
    intervals = meter_intervals(island_run)
    assert len(intervals) == len(island_run.site.meters) * 96
    h01 = intervals[intervals.meter == "m-h01"]
    assert h01.import_kwh.sum() == pytest.approx(s["meters"]["m-h01"]["import_kwh"], abs=1e-6)
    assert h01.export_kwh.sum() == pytest.approx(s["meters"]["m-h01"]["export_kwh"], abs=1e-6)


def test_blackout_and_black_start_from_the_battery() -> None:
    """A battery too weak for the critical load at the outage: blackout, then black start."""
    loss, back = datetime(2026, 1, 15, 1, tzinfo=UTC), datetime(2026, 1, 15, 9, tzinfo=UTC)
    gone = {"chp1", "sensor-chp1", "fc1", "wind1", "sensor-wind1"}
    site = load_site("demo")
    assert site.scenario is not None
    devices = tuple(
        d.model_copy(update={"p_discharge_max_kw": 7.0, "p_charge_max_kw": 7.0})
        if d.id == "bess-community"
        else d
        for d in site.devices
        if d.id not in gone
    )
    meters = tuple(
        m.model_copy(update={"devices": tuple(x for x in m.devices if x not in gone)})
        for m in site.meters
    )
    site = site.model_copy(
        update={
            "devices": devices,
            "meters": meters,
            "scenario": site.scenario.model_copy(
                update={"outages": (Outage(start=loss, end=back),)}
            ),
        }
    )
    engine = simulate(site, start=datetime(2026, 1, 15, tzinfo=UTC), days=0.5, step_s=60)
    o, p = engine.out, engine.plant
    codes = [e["code"] for e in engine.event_list()]
    assert codes[:3] == ["islanded", "blackout", "black_start"] and codes[-1] == "resynchronised"
    dark = o.mode == kernel.BLACKOUT
    assert dark.any() and np.all(o.load[:, dark] == 0.0) and np.all(o.freq[dark] == 0.0)
    assert np.all(o.bat[:, dark] == 0.0)
    # the first step after a black start serves the critical loads only, within the battery
    k = int(np.flatnonzero(dark[:-1] & (o.mode[1:] == kernel.ISLAND))[0]) + 1
    crit = ~np.isfinite(p.load_prio)
    np.testing.assert_allclose(o.load[crit, k], p.load_dem[crit, k])
    assert np.all(o.load[~crit, k] == 0.0)
    assert o.load[:, k].sum() <= 0.9 * 7.0  # black start keeps 10 % headroom
    assert np.abs(balance_residual_kw(engine)).max() * p.dt_h < 1e-9
    assert np.all(o.mode[p.index >= back] == kernel.GRID)


def test_sync_check_waits_for_the_phase_angle_at_one_second_steps() -> None:
    back = datetime(2026, 2, 10, 13, 10, tzinfo=UTC)
    site = _site(outages=(Outage(start=LOSS, end=back, return_phase_deg=90.0),))
    engine = simulate(site, start=LOSS - timedelta(minutes=1), days=15 / 1440, step_s=1.0)
    o, index = engine.out, engine.plant.index
    k_loss, k_back = index.get_loc(LOSS), index.get_loc(back)

    # the island's angle drifts with its frequency; the utility returns 90 degrees away; the
    # synchroniser slews 360 deg/s x 0.1 Hz = 36 degrees a second toward it and closes within 10
    def wrap(a: float) -> float:
        return (a + 180.0) % 360.0 - 180.0

    angle = wrap(float(np.sum(360.0 * (o.freq[k_loss:k_back] - 50.0))))
    waits = 0
    while True:
        diff = wrap(angle - 90.0)
        diff = float(np.sign(diff)) * max(0.0, abs(diff) - 36.0)
        if abs(diff) <= 10.0:
            break
        angle = wrap(90.0 + diff + 360.0 * (o.freq[k_back + waits] - 50.0))
        waits += 1
    assert waits >= 1
    assert np.all(o.mode[k_back : k_back + waits] == kernel.ISLAND)
    assert o.mode[k_back + waits] == kernel.GRID
    closed = (back + timedelta(seconds=waits)).isoformat()
    codes = [(e["code"], e["ts"]) for e in engine.event_list()]
    assert codes == [
        ("islanded", LOSS.isoformat()),
        ("sync_wait", back.isoformat()),
        ("resynchronised", closed),
    ]


def test_sync_check_waits_for_the_utility_voltage_to_recover() -> None:
    sag = Outage(start=LOSS, end=BACK, return_voltage_pu=0.9, recovery_min=10)
    engine = simulate(
        _site(outages=(sag,)), start=datetime(2026, 2, 10, 12, tzinfo=UTC), days=0.25, step_s=60
    )
    o, index = engine.out, engine.plant.index
    k_back = index.get_loc(BACK)
    assert np.all(o.mode[k_back : k_back + 10] == kernel.ISLAND)  # 0.1 p.u. apart: wait
    assert o.mode[k_back + 10] == kernel.GRID
