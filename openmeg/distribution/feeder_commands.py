"""Commands through the DER data feeder: a point write on a device, read back and confirmed, or
failed with the reason (Y.2071 clause 10.2, the way down)."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING, Protocol

from openmeg.core.bus import Bus
from openmeg.core.errors import CommandError, DeviceError
from openmeg.core.messages import CommandResult, command_result_topic, reportable
from openmeg.distribution.writes import Limits, plan_writes

if TYPE_CHECKING:
    from openmeg.distribution.feeder import Link


class _Clock(Protocol):
    def now(self) -> datetime: ...


SKIPPED = "not written: an operator's command holds this point"
"""The reason of a write that ``skip`` called off, after waiting for the device."""


class FeederCommands:
    """The command half of the feeder: ``site``, ``bus``, ``clock`` and ``links`` are its own."""

    site: str
    bus: Bus
    clock: _Clock
    links: dict[str, Link]
    writes_sent: Counter[str]
    """Write requests sent to each device (the devices' own counts must agree)."""
    write_locks: dict[str, asyncio.Lock]
    """One command at a time per device: its writes and their read-back are not interleaved."""

    async def command(
        self,
        device: str,
        point: str,
        value: float,
        *,
        user: str = "system",
        limits: Limits | None = None,
        revert_s: int = 0,
        publish: bool = True,
        skip: Callable[[], bool] | None = None,
    ) -> CommandResult:
        """Write a point on a device and read it back; the result says confirmed, or why it
        failed (refused before writing, refused by the device, or not read back as written).
        With ``publish`` the result goes on the bus too (an operator's command). ``skip``,
        asked once the device is free, calls the write off (reason ``SKIPPED``)."""
        now = self.clock.now()
        reason = ""
        async with self.write_locks.setdefault(device, asyncio.Lock()):
            if skip is not None and skip():
                reason = SKIPPED
            else:
                try:
                    await self._write(device, point, value, limits=limits, revert_s=revert_s)
                except (CommandError, DeviceError) as err:
                    reason = str(err)
        result = CommandResult(
            site=self.site,
            device=device,
            name=point,
            value=reportable(value),
            accepted=not reason,
            reason=reason,
            ts=now,
        )
        if publish:
            await self.bus.publish(command_result_topic(self.site, device, point), result)
        return result

    async def _write(
        self, device: str, point: str, value: float, *, limits: Limits | None, revert_s: int
    ) -> None:
        link = self.links.get(device)
        if link is None:
            raise CommandError(
                f"unknown device {device!r}; connected: {', '.join(sorted(self.links))}"
            )
        try:
            plan = plan_writes(link.device, point, value, limits=limits, revert_s=revert_s)
        except (ValueError, OverflowError, KeyError) as err:  # an encoding the device refuses
            raise CommandError(f"{device}/{point} cannot be set to {value}: {err}") from err
        master = link.device.master
        for address, regs in plan.writes:
            self.writes_sent[device] += 1
            await master.write(address, regs)
        back: dict[int, int] = {}
        for address, count in plan.readback:
            regs = await master.read(address, count)
            back.update(zip(range(address, address + count), regs, strict=True))
        if not plan.confirms(back):
            raise CommandError(f"{device}/{point}: the device does not hold what was written")
