"""Commands to the field: the control cycle's setpoints through the write phase, and the
operator's commands (from the API or the bus), which keep the controllers off the point they set
for a while (``manual_hold_s``). A command from the bus is carried out only with an operator's
signed authorisation for it (``openmeg.core.command_auth``); a refused one is answered with the
reason and audited, its actor never taken from the message."""

from __future__ import annotations

import math
from collections.abc import Awaitable, Callable, Mapping
from datetime import datetime, timedelta

from openmeg.core.audit import AuditLog
from openmeg.core.bus import Bus, Subscription, waiting
from openmeg.core.clock import Clock
from openmeg.core.command_auth import UNVERIFIED, CommandAuthError, CommandAuthority
from openmeg.core.messages import (
    BusMessage,
    CommandMessage,
    CommandResult,
    command_result_topic,
    command_topic,
    is_id,
    reportable,
)
from openmeg.distribution.feeder import DerDataFeeder
from openmeg.distribution.setpoint_writer import SetpointWriter
from openmeg.operation.runtime import Status

Command = Callable[[str, str, float, str], Awaitable[CommandResult]]
"""``(device, point, value, user)``: an operator's command, carried out and logged."""


class FieldCommands:
    """The write phase and the operator's writes of one site, through ``feeder``."""

    def __init__(
        self,
        site: str,
        *,
        feeder: DerDataFeeder,
        writer: SetpointWriter,
        bus: Bus,
        clock: Clock,
        status: Status,
        authority: CommandAuthority,
        audit: AuditLog,
        wall: Clock,
        manual_hold_s: float = 900.0,
    ) -> None:
        """``authority`` verifies the authorisations of commands from the bus, against real
        time (``wall``); ``audit`` records the refused ones."""
        self.site, self.feeder, self.writer = site, feeder, writer
        self.bus, self.clock, self.status = bus, clock, status
        self.authority, self.audit, self.wall = authority, audit, wall
        self.manual_hold = timedelta(seconds=manual_hold_s)
        self._commands: Subscription | None = None

    async def start(self) -> None:
        self._commands = await self.bus.subscribe(command_topic(self.site, "+", "+"))

    async def stop(self) -> None:
        if self._commands is not None:
            await self.bus.unsubscribe(self._commands)
            self._commands = None

    async def write_phase(self, setpoints: Mapping[str, float], now: datetime) -> None:
        """The controllers' setpoints for the devices on the wire (the writer leaves those an
        operator holds by hand alone)."""
        wanted = {k: v for k, v in setpoints.items() if k.split("/")[0] in self.feeder.links}
        await self.writer.write(wanted, now)

    async def operator_write(self, device: str, point: str, value: float) -> CommandResult:
        """An operator's command to the field; the controllers keep off that point for
        ``manual_hold_s``."""
        key = f"{device}/{point}"
        held = self.writer.manual.get(key)
        self.writer.hold(key, self.clock.now() + self.manual_hold)  # before: no write overtakes
        result = await self.feeder.command(
            device, point, value, limits=self.writer.limits.get(device), revert_s=0
        )
        if result.accepted:
            self.status.commands += 1
        elif held is None:
            del self.writer.manual[key]  # refused: the controllers keep the point
        else:
            self.writer.manual[key] = held
        return result

    async def pump(self, command: Command) -> None:
        """Carry out, through ``command``, the commands that came on the bus since the last call."""
        while items := waiting(self._commands):
            for topic, msg in items:
                await self.handle(topic, msg, command)

    async def handle(self, topic: str, msg: BusMessage, command: Command) -> None:
        """One command from the bus: carried out if it names the device and point of its topic
        and carries a valid operator's authorisation for it; else refused, answered, audited."""
        _, _, _, device, name = topic.split("/")
        if not isinstance(msg, CommandMessage) or (msg.device, msg.name) != (device, name):
            await self.refuse(
                device,
                name,
                math.nan,
                "a command message must name the device and point of its topic",
                UNVERIFIED,
            )
            return
        try:
            who = self.authority.command(
                msg.authorisation, device, name, msg.value, self.wall.now()
            )
        except CommandAuthError as err:
            await self.refuse(device, name, msg.value, err.reason, err.actor)
            return
        await command(device, name, msg.value, who.sub)

    async def refuse(self, device: str, name: str, value: float, reason: str, actor: str) -> None:
        """Answer a command refused before it reached the field, and audit it."""
        now = self.clock.now()
        finite = reportable(value)
        if not (is_id(device) and is_id(name)):  # no result can name them: audited only
            reason = f"{reason} (the topic names no device and point of the vocabulary)"
        self.audit.append(
            ts=now,
            actor=actor,
            action="command_refused",
            target=f"{device}/{name}"[:256],
            detail={"value": repr(value), "reason": reason, "via": "bus"},
        )
        if not (is_id(device) and is_id(name)):
            return
        await self.bus.publish(
            command_result_topic(self.site, device, name),
            CommandResult(
                site=self.site,
                device=device,
                name=name,
                value=finite,
                accepted=False,
                reason=reason,
                ts=now,
            ),
        )
