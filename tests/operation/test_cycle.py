"""The control cycle: priority order, first writer wins, failures become alarms."""

from dataclasses import dataclass

import pytest

from openmeg.operation.controllers.default import BatteryTarget, SelfConsumption
from openmeg.operation.cycle import ControlCycle, ProcessImage


@dataclass
class Fixed:
    name: str
    priority: int
    writes: dict[str, float]
    fail: bool = False

    def run(self, image: ProcessImage) -> dict[str, float]:
        if self.fail:
            raise RuntimeError("sensor image incomplete")
        return self.writes


def test_lower_priority_number_runs_first_and_wins() -> None:
    cycle = ControlCycle(
        [
            Fixed(name="late", priority=20, writes={"bess/p_set_kw": 5.0, "chp/p_set_kw": 30.0}),
            Fixed(name="early", priority=10, writes={"bess/p_set_kw": -2.0}),
        ]
    )
    result = cycle.run({})
    assert result.setpoints == {"bess/p_set_kw": -2.0, "chp/p_set_kw": 30.0}
    assert [c.name for c in cycle.controllers] == ["early", "late"]
    assert result.duration_s >= 0 and cycle.last_duration_s == result.duration_s


def test_a_failing_controller_is_reported_and_the_others_still_run() -> None:
    cycle = ControlCycle(
        [
            Fixed(name="broken", priority=1, writes={}, fail=True),
            Fixed(name="ok", priority=2, writes={"x/p_set_kw": 1.0}),
        ]
    )
    result = cycle.run({})
    assert result.failures == {"broken": "RuntimeError: sensor image incomplete"}
    assert result.setpoints == {"x/p_set_kw": 1.0}


def test_duplicate_priorities_are_refused() -> None:
    with pytest.raises(ValueError, match="unique"):
        ControlCycle(
            [Fixed(name="a", priority=1, writes={}), Fixed(name="b", priority=1, writes={})]
        )


def test_self_consumption_adds_back_the_batterys_own_output() -> None:
    ctrl = SelfConsumption(targets=[BatteryTarget(battery="b1", meter="m1")], priority=1)
    grid = {"pcc/mode": 0.0, "b1/soc": 0.5}
    # the meter imports 2 kW while the battery already discharges 3 kW: net demand is 5 kW
    assert ctrl.run({**grid, "m1/import_kw": 2.0, "b1/p_kw": 3.0}) == {"b1/p_set_kw": 5.0}
    # the meter exports 4 kW while the battery idles: absorb 4 kW
    assert ctrl.run({**grid, "m1/import_kw": -4.0, "b1/p_kw": 0.0}) == {"b1/p_set_kw": -4.0}


def test_self_consumption_keeps_the_outage_reserve_while_grid_connected() -> None:
    target = BatteryTarget(battery="b1", meter="m1", reserve_soc=0.3)
    ctrl = SelfConsumption(targets=[target], priority=1)
    at_reserve = {"b1/soc": 0.3, "m1/import_kw": 2.0, "b1/p_kw": 0.0}
    assert ctrl.run({**at_reserve, "pcc/mode": 0.0}) == {"b1/p_set_kw": 0.0}
    assert ctrl.run({**at_reserve, "pcc/mode": 1.0}) == {"b1/p_set_kw": 2.0}  # islanded
    surplus = {**at_reserve, "m1/import_kw": -4.0, "pcc/mode": 0.0}
    assert ctrl.run(surplus) == {"b1/p_set_kw": -4.0}  # it still charges
