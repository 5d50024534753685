"""The control cycle: priority order, first writer wins, failures become alarms."""

from dataclasses import dataclass
from datetime import UTC, datetime

import pytest

from openmeg.core.points import Quality
from openmeg.operation.controllers.default import BatteryTarget, SelfConsumption
from openmeg.operation.cycle import ControlCycle, ProcessImage
from openmeg.operation.process_image import Sample

T0 = datetime(2026, 6, 1, 12, tzinfo=UTC)


def image(values: dict[str, float], stale: frozenset[str] = frozenset()) -> ProcessImage:
    """A process image of good values (``stale`` ones stale)."""
    return ProcessImage(
        {
            k: Sample(value=v, ts=T0, quality=Quality.STALE if k in stale else Quality.GOOD)
            for k, v in values.items()
        },
        T0,
    )


def setpoints(ctrl: SelfConsumption, values: dict[str, float]) -> dict[str, float]:
    return ctrl.run(image(values)).setpoints


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
    result = cycle.run(image({}))
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
    result = cycle.run(image({}))
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
    assert setpoints(ctrl, {**grid, "m1/import_kw": 2.0, "b1/p_kw": 3.0}) == {"b1/p_set_kw": 5.0}
    # the meter exports 4 kW while the battery idles: absorb 4 kW
    assert setpoints(ctrl, {**grid, "m1/import_kw": -4.0, "b1/p_kw": 0.0}) == {"b1/p_set_kw": -4.0}


def test_self_consumption_keeps_the_outage_reserve_while_grid_connected() -> None:
    target = BatteryTarget(battery="b1", meter="m1", reserve_soc=0.3)
    ctrl = SelfConsumption(targets=[target], priority=1)
    at_reserve = {"b1/soc": 0.3, "m1/import_kw": 2.0, "b1/p_kw": 0.0}
    assert setpoints(ctrl, {**at_reserve, "pcc/mode": 0.0}) == {"b1/p_set_kw": 0.0}
    assert setpoints(ctrl, {**at_reserve, "pcc/mode": 1.0}) == {"b1/p_set_kw": 2.0}  # islanded
    surplus = {**at_reserve, "m1/import_kw": -4.0, "pcc/mode": 0.0}
    assert setpoints(ctrl, surplus) == {"b1/p_set_kw": -4.0}  # it still charges


def test_batteries_behind_one_meter_share_its_net_demand_by_rating() -> None:
    ctrl = SelfConsumption(
        targets=[
            BatteryTarget(battery="big", meter="pcc", rating_kw=150.0),
            BatteryTarget(battery="small", meter="pcc", rating_kw=50.0),
        ],
        priority=1,
    )
    values = {"pcc/mode": 0.0, "big/soc": 0.5, "small/soc": 0.5}
    # the PCC imports 20 kW while the two discharge 30 + 10 kW: 60 kW to cover, 3 : 1
    got = setpoints(ctrl, {**values, "pcc/import_kw": 20.0, "big/p_kw": 30.0, "small/p_kw": 10.0})
    assert got == {"big/p_set_kw": 45.0, "small/p_set_kw": 15.0}


def test_a_stale_battery_is_held_idle_and_the_others_cover_its_meter() -> None:
    ctrl = SelfConsumption(
        targets=[
            BatteryTarget(battery="big", meter="pcc", rating_kw=150.0),
            BatteryTarget(battery="small", meter="pcc", rating_kw=50.0),
        ],
        priority=1,
    )
    values = {"pcc/mode": 0.0, "big/soc": 0.5, "small/soc": 0.5, "pcc/import_kw": 20.0}
    values |= {"big/p_kw": 30.0, "small/p_kw": 10.0}
    out = ctrl.run(image(values, stale=frozenset({"small/p_kw"})))
    # its last output (10 kW) still counts at the PCC: the big one covers all 60 kW
    assert out.setpoints == {"small/p_set_kw": 0.0, "big/p_set_kw": 60.0}
    assert out.holds == {"small": "small/p_kw is stale since 2026-06-01T12:00:00+00:00"}
    stale_meter = ctrl.run(image(values, stale=frozenset({"pcc/import_kw"})))
    assert stale_meter.setpoints == {"big/p_set_kw": 0.0, "small/p_set_kw": 0.0}
    assert set(stale_meter.holds) == {"big", "small"}
