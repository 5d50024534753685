"""The control cycle: a process image of all points, controllers in priority order, setpoints.

A controller that fails raises a visible alarm (on the bus and in the store); the others still
run. A controller whose inputs for a device are stale or missing holds that device at its safe
setpoint and says why (``Proposal.holds``): the runtime alarms it. A later controller cannot
change a setpoint an earlier one has written.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Protocol

from openmeg.operation.process_image import ProcessImage

__all__ = ["ControlCycle", "Controller", "CycleResult", "ProcessImage", "Proposal"]


@dataclass(kw_only=True)
class Proposal:
    """What a controller proposes: setpoints (``device/name`` -> value), and the devices it
    holds at their safe setpoint with the reason (``device`` -> why)."""

    setpoints: dict[str, float] = field(default_factory=dict)
    holds: dict[str, str] = field(default_factory=dict)


class Controller(Protocol):
    """One controller: reads the process image, proposes setpoints."""

    name: str
    priority: int

    def run(self, image: ProcessImage) -> Proposal | dict[str, float]: ...


@dataclass(kw_only=True)
class CycleResult:
    setpoints: dict[str, float]
    failures: dict[str, str] = field(default_factory=dict)
    holds: dict[str, str] = field(default_factory=dict)
    duration_s: float = 0.0


class ControlCycle:
    """Runs controllers in ascending ``priority`` (lower runs first and wins)."""

    def __init__(self, controllers: list[Controller]) -> None:
        prios = [c.priority for c in controllers]
        if len(set(prios)) != len(prios):
            raise ValueError(f"controller priorities must be unique, got {sorted(prios)}")
        self.controllers = sorted(controllers, key=lambda c: c.priority)
        self.last_duration_s = 0.0

    def run(self, image: ProcessImage) -> CycleResult:
        t0 = time.perf_counter()
        setpoints: dict[str, float] = {}
        failures: dict[str, str] = {}
        holds: dict[str, str] = {}
        for ctrl in self.controllers:
            try:
                proposed = ctrl.run(image)
            except Exception as err:  # any failure becomes an alarm, never a silent log line
                failures[ctrl.name] = f"{type(err).__name__}: {err}"
                continue
            if not isinstance(proposed, Proposal):
                proposed = Proposal(setpoints=proposed)
            for point, value in proposed.setpoints.items():
                setpoints.setdefault(point, value)
            for device, why in proposed.holds.items():
                holds.setdefault(device, f"{ctrl.name}: {why}")
        self.last_duration_s = time.perf_counter() - t0
        return CycleResult(
            setpoints=setpoints, failures=failures, holds=holds, duration_s=self.last_duration_s
        )
