"""Fault location, isolation and service restoration on the demo's residential feeder.

The study in simulated time composes the platform's FLISR (located from the indicators) with the
simulated field's protection and switches here, in the tests: the field imports no platform
logic and the platform never imports the field. The same fault over the wire, with the field as
its own program, is in ``test_fault_restoration.py``.
"""

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from openmeg.core.site import Site, load_site, network_of
from openmeg.distribution.flisr import (
    FlisrPlan,
    plan_flisr,
    plan_from_indicators,
    plan_return_to_normal,
)
from openmeg.sim.engine import Engine
from openmeg.sim.scenario import make_engine
from openmeg.sim.summary import balance_residual_kw
from openmeg.sim.switchgear import CLOSE, OPEN, Switchgear

SITE = load_site("demo")
NET = network_of(SITE)
BUS = {str(n): int(i) for i, n in zip(NET.bus.index, NET.bus["name"], strict=True)}


@dataclass(kw_only=True)
class FaultRun:
    """A fault study's engine, FLISR's plan, the steps it acted at and what happened when."""

    engine: Engine
    plan: FlisrPlan
    k_fault: int
    k_restored: int
    k_repaired: int
    timeline: list[tuple[datetime, str]] = field(default_factory=list)


def run_feeder_fault(
    site: Site,
    *,
    start: datetime,
    days: float,
    step_s: float,
    fault_at: datetime,
    line: str,
    restore_after: timedelta = timedelta(minutes=1),
    repair_after: timedelta = timedelta(hours=2),
) -> FaultRun:
    """Simulate ``site`` with a fault on ``line`` at ``fault_at``: the field's protection trips
    the breaker and latches the indicators (``Switchgear``), FLISR locates the section from the
    indicators and ``restore_after`` it isolates the section and restores the healthy parts,
    the repair crew ``repair_after`` it clears the fault and the network goes back to normal;
    the engine's dark buses follow the switches."""
    engine = make_engine(site, start=start, days=days, step_s=step_s)
    net = network_of(site)
    gear = Switchgear(site, net)
    index = engine.plant.index
    k_fault = int(index.get_indexer([fault_at])[0])
    if k_fault < 1:
        raise ValueError(f"the fault at {fault_at} must fall inside the run, after its start")
    k_restored = k_fault + max(1, round(restore_after.total_seconds() / step_s))
    k_repaired = k_fault + max(1, round(repair_after.total_seconds() / step_s))
    engine.run_until(k_fault)
    p_mw, q_mvar = engine.bus_injections_mw(k_fault - 1)
    tripped = gear.inject(line)
    indicating = [s for s, latched in gear.indicator.items() if latched]
    closed = {s: gear.position(s) for s in gear.kind}
    plan = plan_from_indicators(net, indicating, p_mw, q_mvar, closed=closed)
    run = FaultRun(
        engine=engine, plan=plan, k_fault=k_fault, k_restored=k_restored, k_repaired=k_repaired
    )
    run.timeline.append((fault_at, f"fault on {line}: {', '.join(tripped)} trips"))
    engine.set_dead_buses(gear.dead)
    engine.run_until(k_restored)
    restored_at = index[min(k_restored, len(index) - 1)].to_pydatetime()
    for switch, verb in plan.steps:
        gear.command(switch, OPEN if verb == "open" else CLOSE)
    run.timeline.append(
        (
            restored_at,
            f"located in {', '.join(plan.section_lines)}; opened "
            f"{', '.join(plan.opened)}; closed {', '.join(plan.closed) or 'nothing'}",
        )
    )
    engine.set_dead_buses(gear.dead)
    engine.run_until(k_repaired)
    gear.clear()
    back = plan_return_to_normal(net, {s: gear.position(s) for s in gear.kind})
    for switch, verb in back:
        gear.command(switch, OPEN if verb == "open" else CLOSE)
    engine.set_dead_buses(gear.dead)
    repaired_at = index[min(k_repaired, len(index) - 1)].to_pydatetime()
    run.timeline.append((repaired_at, f"{line} repaired: switches back to normal"))
    engine.run()
    return run


def _buses(*names: str) -> frozenset[int]:
    return frozenset(BUS[f"Bus {n}"] for n in names)


def _uniform(p_kw: float) -> tuple[np.ndarray, np.ndarray]:
    """Every LV bus draws ``p_kw`` at power factor 0.95."""
    p = np.zeros(len(NET.bus))
    lv = NET.bus.vn_kv.to_numpy() < 1
    p[lv] = -p_kw / 1000
    return p, p * np.tan(np.arccos(0.95))


R_FEEDER = [
    "R2",
    "R3",
    "R4",
    "R5",
    "R6",
    "R7",
    "R8",
    "R9",
    "R10",
    "R11",
    "R12",
    "R13",
    "R14",
    "R15",
    "R16",
    "R17",
    "R18",
]


def test_a_fault_mid_feeder_is_located_isolated_and_the_rest_restored() -> None:
    plan = plan_flisr(NET, "Line R6-R7", *_uniform(2.0))
    assert plan.breaker == "cb-r"
    assert plan.indicating == ("cb-r", "sw-r3", "sw-r5")
    assert plan.section_lines == (
        "Line R6-R16",
        "Line R6-R7",
        "Line R7-R8",
        "Line R8-R9",
        "Line R9-R17",
    )
    assert plan.section_buses == _buses("R6", "R7", "R8", "R9", "R16", "R17")
    assert plan.opened == ("sw-r5", "sw-r9")
    assert plan.closed == ("cb-r", "tie-r18-c20")
    [check] = plan.checks
    assert check.ok and check.vm_min_pu > 0.9 and check.loading_max_pct < 100
    assert plan.dark_after_trip == _buses(*R_FEEDER)
    assert plan.dark_after_restoration == plan.section_buses


def test_a_tie_that_would_overload_or_undervolt_stays_open() -> None:
    plan = plan_flisr(NET, "Line R6-R7", *_uniform(10.0))
    [check] = plan.checks
    assert not check.ok and check.vm_min_pu < 0.9
    assert plan.closed == ("cb-r",)
    assert plan.dark_after_restoration == plan.section_buses | _buses("R10", "R18")


def test_a_fault_next_to_the_breaker_keeps_the_breaker_open() -> None:
    plan = plan_flisr(NET, "Line R2-R3", *_uniform(1.0))
    assert plan.indicating == ("cb-r",)
    assert plan.section_buses == _buses("R2", "R3", "R11")
    assert plan.opened == ("cb-r", "sw-r3")
    assert "cb-r" not in plan.closed
    with pytest.raises(KeyError, match="no line 'Line X'"):
        plan_flisr(NET, "Line X", *_uniform(1.0))


def test_fault_scenario_in_simulated_time() -> None:
    fault = datetime(2026, 6, 10, 16, tzinfo=UTC)
    run = run_feeder_fault(
        SITE,
        start=fault - timedelta(hours=1),
        days=0.25,
        step_s=60,
        fault_at=fault,
        line="Line R6-R7",
        repair_after=timedelta(hours=1),
    )
    e, p = run.engine, run.engine.plant
    by_id = {d: i for i, d in enumerate(p.load_ids)}

    def served(device: str, k: int) -> float:
        return float(e.out.load[by_id[device], k])

    def demand(device: str, k: int) -> float:
        return float(p.load_dem[by_id[device], k])

    k0, k1, k2 = run.k_fault, run.k_restored, run.k_repaired
    # the trip darkens the whole residential feeder behind the breaker
    assert all(served(f"load-{h}", k0) == 0.0 for h in ("h01", "h03", "h05", "h09"))
    assert served("load-o1", k0) == pytest.approx(demand("load-o1", k0))  # R1: before cb-r
    # after FLISR: upstream and tie-fed homes are back, the faulted section stays dark
    for h in ("h01", "h02", "h03", "h04", "h09", "h10"):
        assert served(f"load-{h}", k1) == pytest.approx(demand(f"load-{h}", k1))
    for h in ("h05", "h06", "h07", "h08"):
        assert served(f"load-{h}", k2 - 1) == 0.0 and served(f"load-{h}", k2) > 0
    # what went unserved is exactly the dark loads' demand
    dark = [i for i, b in enumerate(p.load_bus) if b in run.plan.section_buses]
    dark_after_trip = [i for i, b in enumerate(p.load_bus) if b in run.plan.dark_after_trip]
    expected = (p.load_dem[dark_after_trip, k0:k1].sum() + p.load_dem[dark, k1:k2].sum()) * p.dt_h
    unserved = (p.load_dem - e.out.load).sum() * p.dt_h
    assert unserved == pytest.approx(expected, rel=1e-9)
    # PV and the home battery in the dark section did nothing meanwhile
    pv_h05 = p.ren_ids.index("pv-h05")
    assert np.all(e.out.ren[pv_h05, k1:k2] == 0.0) and e.out.ren[pv_h05, k2] > 0
    assert np.all(e.out.bat[p.bat_ids.index("bess-h05"), k1:k2] == 0.0)
    assert np.abs(balance_residual_kw(e)).max() * p.dt_h < 1e-9
    assert [t for _, t in run.timeline][1].startswith("located in Line R6-R16, Line R6-R7")


def test_the_indicators_locate_what_the_study_was_told() -> None:
    told = plan_flisr(NET, "Line R6-R7", *_uniform(2.0))
    tripped = {s: s != "cb-r" for s in ("cb-r", "sw-r3", "sw-r5", "sw-r9")} | {"tie-r18-c20": False}
    located = plan_from_indicators(NET, ["sw-r5", "cb-r", "sw-r3"], *_uniform(2.0), closed=tripped)
    assert located.faulted_line is None and told.faulted_line == "Line R6-R7"
    for name in ("breaker", "indicating", "section_lines", "section_buses", "opened", "closed"):
        assert getattr(located, name) == getattr(told, name), name
    assert located.dark_after_trip == told.dark_after_trip
    assert located.dark_after_restoration == told.dark_after_restoration
    assert located.steps == (
        ("sw-r5", "open"),
        ("sw-r9", "open"),
        ("cb-r", "close"),
        ("tie-r18-c20", "close"),
    )
    with pytest.raises(KeyError, match="no switch sw-x"):
        plan_from_indicators(NET, ["sw-x"], *_uniform(2.0))
    with pytest.raises(ValueError, match="no fault passage indicator latched"):
        plan_from_indicators(NET, [], *_uniform(2.0))


def test_the_return_to_normal_never_closes_a_loop() -> None:
    # after FLISR of a fault on Line R6-R7: the section out, the tie feeding R10 and R18
    isolated = {"cb-r": True, "sw-r3": True, "sw-r5": False, "sw-r9": False, "tie-r18-c20": True}
    assert plan_return_to_normal(NET, isolated) == (
        ("sw-r5", "close"),  # R5 supplied, R6 dark: no loop
        ("tie-r18-c20", "open"),  # sw-r9 would join R9 and R10, both supplied
        ("sw-r9", "close"),
    )
    # a fault next to the breaker: the breaker stays open with sw-r3, the tie feeds R4 on
    next_to_breaker = isolated | {"cb-r": False, "sw-r3": False, "sw-r5": True, "sw-r9": True}
    assert plan_return_to_normal(NET, next_to_breaker) == (
        ("cb-r", "close"),
        ("tie-r18-c20", "open"),
        ("sw-r3", "close"),
    )
    normal = dict.fromkeys(("cb-r", "sw-r3", "sw-r5", "sw-r9"), True) | {"tie-r18-c20": False}
    assert plan_return_to_normal(NET, normal) == ()
