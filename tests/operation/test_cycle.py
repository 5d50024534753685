"""The control cycle: priority order, first writer wins, failures become alarms."""

from dataclasses import dataclass

import pytest

from openmeg.operation.controllers.default import BatteryTarget, SelfConsumption
from openmeg.der.operating_modes import heat_led_chp_request_kw
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
    # the meter imports 2 kW while the battery already discharges 3 kW: net demand is 5 kW
    assert ctrl.run({"m1/import_kw": 2.0, "b1/p_kw": 3.0}) == {"b1/p_set_kw": 5.0}
    # the meter exports 4 kW while the battery idles: absorb 4 kW
    assert ctrl.run({"m1/import_kw": -4.0, "b1/p_kw": 0.0}) == {"b1/p_set_kw": -4.0}


def test_heat_led_law_hysteresis_and_output() -> None:
    args = (100.0, 600.0, 0.33, 0.55, 25.0, 50.0)  # demand kW, capacity kWh, etas, limits
    assert heat_led_chp_request_kw(False, 0.5, *args) == 0.0  # in the band, off stays off
    # in the band, on stays on: (100 + 0.2*600) kW heat * 0.33/0.55 = 132 kW -> max 50
    assert heat_led_chp_request_kw(True, 0.5, *args) == 50.0
    assert heat_led_chp_request_kw(False, 0.3, 10.0, 600.0, 0.33, 0.55, 25.0, 50.0) == 50.0
    # soc 0.69: (10 + 0.01*600) = 16 kW heat -> 9.6 kW el -> raised to the minimum load
    assert heat_led_chp_request_kw(True, 0.69, 10.0, 600.0, 0.33, 0.55, 25.0, 50.0) == 25.0
    assert heat_led_chp_request_kw(True, 0.9, *args) == 0.0
