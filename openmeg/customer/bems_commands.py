"""Commands to a premises' BAS: a schedule, a setpoint, a lighting scene, a security arming.

Each comes from a verified identity (an API login, or a signed authorisation verified by
``core.command_auth``), is checked against its ``BasPoint`` (known, writable, finite, in range,
a whole state), written over BACnet, read back, and audited, carried out or refused."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from openmeg.core.audit import AuditLog
from openmeg.core.building_automation import BasPoint, BasSystem, point_of
from openmeg.core.clock import Clock
from openmeg.core.command_auth import CommandAuthError, CommandAuthority
from openmeg.core.errors import CommandError, DeviceError

READBACK_REL = 1e-6
"""A value read back within this fraction of the one written is the one written (a BACnet
REAL is a 32-bit float: 21.3 reads back as 21.2999992) [-]."""


class BasClient(Protocol):
    """What the energy management needs of a BAS client (``protocols.bacnet_client``'s)."""

    async def start(self) -> None: ...
    async def stop(self) -> None: ...
    async def read(self, name: str) -> float: ...
    async def read_many(self, names: Sequence[str]) -> dict[str, float]: ...
    async def write(self, name: str, value: float) -> None: ...


@dataclass(frozen=True, kw_only=True)
class CommandDone:
    """A command carried out: what was written and what the BAS reads back."""

    equipment: str
    point: str
    value: float
    readback: float
    actor: str
    ts: datetime


def command_problem(p: BasPoint, value: float) -> str:
    """Why ``value`` cannot be written to ``p`` (``""`` if it can)."""
    if not p.writable:
        return "it is read-only: it cannot be commanded"
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return f"it takes a finite number, not {value!r}"
    if not p.low <= value <= p.high:
        return f"it takes {p.low:g}..{p.high:g} {p.unit}, not {value:g}".replace(" ,", ",")
    if (p.binary or p.states) and value != int(value):
        return f"it takes a whole number {p.low:g}..{p.high:g}, not {value:g}"
    return ""


class BasCommander:
    """Carries out commands to ``bas`` through ``client``, audited in ``audit``."""

    def __init__(
        self, site: str, bas: BasSystem, *, client: BasClient, audit: AuditLog, clock: Clock
    ) -> None:
        self.site, self.bas, self.client, self.audit, self.clock = site, bas, client, audit, clock
        self._kinds = {e.id: e.kind for e in bas.equipment}

    def _refused(
        self, actor: str, target: str, value: object, reason: str, via: str
    ) -> CommandError:
        self.audit.append(
            ts=self.clock.now(),
            actor=actor,
            action="bas_command_refused",
            target=target,
            detail={"value": repr(value), "reason": reason, "via": via, "bas": self.bas.id},
        )
        return CommandError(reason)

    def point(self, equipment: str, point: str) -> BasPoint:
        """The point ``equipment.point`` of the BAS; ``KeyError`` saying what there is."""
        kind = self._kinds.get(equipment)
        if kind is None:
            known = ", ".join(self._kinds)
            raise KeyError(f"the BAS {self.bas.id} has no equipment {equipment!r}: it has {known}")
        return point_of(kind, point)

    async def command(
        self,
        equipment: str,
        point: str,
        value: float,
        *,
        actor: str,
        reason: str = "",
        via: str = "api",
    ) -> CommandDone:
        """Write ``equipment.point = value`` for ``actor``, read back; ``CommandError`` why not."""
        target = f"{self.site}/{equipment}/{point}"[:256]
        try:
            p = self.point(equipment, point)
        except KeyError as err:
            raise self._refused(actor, target, value, str(err.args[0]), via) from None
        why = command_problem(p, value)
        if why:
            raise self._refused(actor, target, value, f"{equipment}.{point}: {why}", via)
        name = f"{equipment}.{point}"
        try:
            await self.client.write(name, float(value))
            back = float(await self.client.read(name))
        except (CommandError, DeviceError) as err:
            raise self._refused(actor, target, value, f"the BAS refused: {err}", via) from err
        if not abs(back - value) <= READBACK_REL * max(1.0, abs(value)):
            raise self._refused(
                actor, target, value, f"{name} reads back {back:g} after {value:g} was written", via
            )
        ts = self.clock.now()
        self.audit.append(
            ts=ts,
            actor=actor,
            action="bas_command",
            target=target,
            detail={"value": float(value), "readback": back, "reason": reason[:200], "via": via},
        )
        return CommandDone(
            equipment=equipment, point=point, value=float(value), readback=back, actor=actor, ts=ts
        )

    async def signed(
        self,
        authority: CommandAuthority,
        token: str,
        equipment: str,
        point: str,
        value: float,
        *,
        now: datetime,
    ) -> CommandDone:
        """A command carrying a signed authorisation (from the bus or the command line): the
        actor is the one who signed it, verified at ``now`` (real time)."""
        target = f"{self.site}/{equipment}/{point}"[:256]
        try:
            ok = authority.command(token, equipment, point, value, now)
        except CommandAuthError as err:
            raise self._refused(err.actor, target, value, str(err), "signed") from err
        return await self.command(equipment, point, value, actor=ok.sub, via="signed")
