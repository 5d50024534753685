"""The control loop on the clock: each cycle the devices added and the connections due are seen
to, the DER data feeder polls the field, fault restoration looks at the switches, the commands
that came on the bus are carried out, and the runtime runs the control cycle (process image,
controllers, write phase). The runtime's report of each cycle is the beat the clock-driven
services keep time by."""

from __future__ import annotations

import asyncio
import time

from openmeg.core.clock import Clock
from openmeg.distribution.fault_restoration import FaultRestoration
from openmeg.distribution.feeder import DerDataFeeder
from openmeg.operation.commands import Command, FieldCommands
from openmeg.operation.device_adds import DeviceAdds
from openmeg.operation.runtime import Runtime


class ControlLoop:
    def __init__(
        self,
        *,
        clock: Clock,
        step_s: float,
        adds: DeviceAdds,
        feeder: DerDataFeeder,
        restoration: FaultRestoration,
        commands: FieldCommands,
        command: Command,
        runtime: Runtime,
    ) -> None:
        """``command``: how an operator's command from the bus is carried out (and logged)."""
        self.clock, self.step_s = clock, step_s
        self.adds, self.feeder, self.restoration = adds, feeder, restoration
        self.commands, self.command, self.runtime = commands, command, runtime
        self.poll_ms = 0.0

    async def poll_phase(self) -> None:
        """The devices added, the connections due, the field polled, the switches looked at."""
        await self.adds.pump()
        await self.adds.retry(self.clock.now())
        t0 = time.perf_counter()
        await self.feeder.poll()
        self.poll_ms = (time.perf_counter() - t0) * 1000.0
        await self.restoration.step()

    async def control_phase(self) -> None:
        """The commands from the bus, then the control cycle and its write phase."""
        await self.commands.pump(self.command)
        await self.runtime.step()

    async def cycle(self) -> None:
        await self.poll_phase()
        await self.control_phase()

    async def run(self, stop: asyncio.Event, *, max_cycles: int | None = None) -> None:
        """A cycle every ``step_s`` of the clock until ``stop`` is set or the runtime counted
        ``max_cycles``."""
        while not stop.is_set() and (max_cycles is None or self.runtime.status.cycles < max_cycles):
            await self.cycle()
            await self.clock.sleep(self.step_s)
