"""A feeder-section fault in simulated time: the breaker trips, FLISR locates and isolates the
section and restores the healthy parts, the line is repaired and the network goes back to its
normal state."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from openmeg.core.site import Site, network_of
from openmeg.distribution.flisr import FlisrPlan, plan_flisr
from openmeg.sim.engine import Engine
from openmeg.sim.scenario import make_engine


@dataclass(kw_only=True)
class FaultRun:
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
    """Simulate ``site`` with a fault on ``line`` at ``fault_at``; FLISR acts ``restore_after``
    it, the repair crew ``repair_after`` it."""
    engine = make_engine(site, start=start, days=days, step_s=step_s)
    index = engine.plant.index
    k_fault = int(index.get_indexer([fault_at])[0])
    if k_fault < 1:
        raise ValueError(f"the fault at {fault_at} must fall inside the run, after its start")
    k_restored = k_fault + max(1, round(restore_after.total_seconds() / step_s))
    k_repaired = k_fault + max(1, round(repair_after.total_seconds() / step_s))
    engine.run_until(k_fault)
    p_mw, q_mvar = engine.bus_injections_mw(k_fault - 1)
    plan = plan_flisr(network_of(site), line, p_mw, q_mvar)
    run = FaultRun(
        engine=engine, plan=plan, k_fault=k_fault, k_restored=k_restored, k_repaired=k_repaired
    )
    run.timeline.append((fault_at, f"fault on {line}: {plan.breaker} trips"))
    engine.set_dead_buses(set(plan.dark_after_trip))
    engine.run_until(k_restored)
    restored_at = index[min(k_restored, len(index) - 1)].to_pydatetime()
    run.timeline.append(
        (
            restored_at,
            f"located in {', '.join(plan.section_lines)}; opened "
            f"{', '.join(plan.opened)}; closed {', '.join(plan.closed) or 'nothing'}",
        )
    )
    engine.set_dead_buses(set(plan.dark_after_restoration))
    engine.run_until(k_repaired)
    engine.set_dead_buses(set())
    repaired_at = index[min(k_repaired, len(index) - 1)].to_pydatetime()
    run.timeline.append((repaired_at, f"{line} repaired: switches back to normal"))
    engine.run()
    return run
