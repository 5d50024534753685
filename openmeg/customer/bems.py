"""The customer energy management service of one premises (Y.2071 clause 9.3, the HEMS or
BEMS): polls its BAS over BACnet (ReadPropertyMultiple), checks every value at the edge,
publishes the points on the bus as ``<site>/<equipment>/<point>``, keeps their interval series
for the efficiency diagnosis and the reports, raises the fire, intrusion and BAS-silent alarms,
and carries out authorised commands (schedules, setpoints, scenes), read back and audited."""

from __future__ import annotations

import asyncio
from contextlib import aclosing
from datetime import datetime, timedelta

from openmeg.core.audit import AuditLog
from openmeg.core.building_automation import BasSystem
from openmeg.core.bus import Bus, cycle_beats
from openmeg.core.clock import Clock
from openmeg.core.command_auth import CommandAuthority
from openmeg.core.errors import CommandError, DeviceError, OpenMegError
from openmeg.core.messages import (
    CommandResult,
    PointUpdate,
    command_result_topic,
    point_topic,
    reportable,
)
from openmeg.core.points import Quality
from openmeg.core.store import Store
from openmeg.customer.bems_alarms import BasAlarms
from openmeg.customer.bems_commands import BasClient, BasCommander, CommandDone
from openmeg.customer.bems_points import Checked, PointSeries, check_poll

__all__ = ["BasClient", "Bems", "CommandDone"]
DOMAIN = "customer"
"""The bus domain of the BAS points: ``meg/<site>/customer/<equipment>/<point>``."""


class Bems:
    """The energy management of the premises of ``bas``, polling it every ``poll_every_s``
    seconds of ``clock`` and keeping ``keep_days`` of its points."""

    def __init__(
        self,
        site: str,
        bas: BasSystem,
        *,
        client: BasClient,
        bus: Bus,
        clock: Clock,
        audit: AuditLog,
        timezone: str,
        store: Store | None = None,
        poll_every_s: float = 60.0,
        keep_days: float = 35.0,
        silent_after: int = 3,
    ) -> None:
        if not 1.0 <= poll_every_s <= 3600.0:
            raise OpenMegError(f"poll a BAS every 1 .. 3600 s, not {poll_every_s}")
        self.site, self.bas, self.client = site, bas, client
        self.bus, self.clock, self.timezone = bus, clock, timezone
        self.poll_every_s = poll_every_s
        self.series = PointSeries(bas, keep=max(2, round(keep_days * 86400 / poll_every_s)))
        self.alarms = BasAlarms(site, bas, bus=bus, store=store, silent_after=silent_after)
        self.commander = BasCommander(site, bas, client=client, audit=audit, clock=clock)
        self.latest: Checked | None = None
        """The last poll answered, checked."""
        self.polls = self.failures = 0
        self._next: datetime | None = None

    async def start(self) -> None:
        """Open the BAS client."""
        await self.client.start()

    async def stop(self) -> None:
        """Close the BAS client."""
        await self.client.stop()

    async def poll(self, now: datetime | None = None) -> Checked | None:
        """One poll of every point at ``now`` (default: the clock's): checked, published, kept;
        ``None`` if the BAS is silent."""
        now = self.clock.now() if now is None else now
        self.polls += 1
        try:
            values = await self.client.read_many(self.series.names)
        except DeviceError as err:
            self.failures += 1
            await self.alarms.silent(now, str(err))
            return None
        checked = check_poll(self.bas, now, values)
        self.latest = checked
        self.series.add(checked)
        await self.alarms.answered(now, checked)
        await self._publish(checked)
        return checked

    async def _publish(self, checked: Checked) -> None:
        units = {f"{e.id}.{p.name}": p.unit or "1" for e, p, _ in self.bas.objects()}
        for name in self.series.names:
            equipment, _, point = name.partition(".")
            good = name in checked.good
            msg = PointUpdate(
                site=self.site,
                device=equipment,
                name=point,
                value=checked.good[name] if good else None,
                unit=units[name],
                ts=checked.ts,
                quality=Quality.GOOD if good else Quality.INVALID,
            )
            await self.bus.publish(point_topic(self.site, equipment, point, domain=DOMAIN), msg)

    async def due(self, now: datetime) -> Checked | None:
        """Poll if ``poll_every_s`` passed since the last poll (or none was made)."""
        if self._next is not None and now < self._next:
            return None
        self._next = now + timedelta(seconds=self.poll_every_s)
        return await self.poll(now)

    async def run(self, stop: asyncio.Event) -> None:
        """Poll on the control cycles' beats once every ``poll_every_s``, until ``stop``."""
        async with aclosing(cycle_beats(self.bus, self.site, stop)) as beats:
            async for now in beats:
                await self.due(now)

    async def command(
        self, equipment: str, point: str, value: float, *, actor: str, reason: str = ""
    ) -> CommandDone:
        """Write ``equipment.point = value`` for ``actor`` (a verified identity), read back;
        ``CommandError`` (audited, nothing written) if it is refused."""
        return await self.commander.command(equipment, point, value, actor=actor, reason=reason)

    async def command_result(
        self, equipment: str, point: str, value: float, *, actor: str, reason: str = ""
    ) -> CommandResult:
        """``command`` for a command that came on the bus (its authorisation verified by who
        took it): the outcome, also published as the command's result."""
        try:
            done = await self.commander.command(
                equipment, point, value, actor=actor, reason=reason, via="bus"
            )
            accepted, why = True, ""
            value = done.readback
        except CommandError as err:
            accepted, why = False, str(err)[:480]
        result = CommandResult(
            site=self.site,
            device=equipment,
            name=point,
            value=reportable(value),
            accepted=accepted,
            reason=why,
            ts=self.clock.now(),
        )
        await self.bus.publish(command_result_topic(self.site, equipment, point), result)
        return result

    async def command_signed(
        self,
        authority: CommandAuthority,
        token: str,
        equipment: str,
        point: str,
        value: float,
        *,
        now: datetime,
    ) -> CommandDone:
        """A command carrying a signed authorisation, verified at ``now`` (real time)."""
        return await self.commander.signed(authority, token, equipment, point, value, now=now)

    def when(self) -> datetime | None:
        """The time of the last poll answered."""
        return None if self.latest is None else self.latest.ts
