"""Fault location, isolation and service restoration over the wire (Y.2071 R8, N3).

The service watches the line switches' points in the process image (``switch_closed``,
``fault_passed``, as the DER data feeder delivers them). When a breaker that is normally closed
reads open with fault passage indicators latched, it locates the faulted section from the
indicators (``flisr.plan_from_indicators``, with the injections the platform knew just before
the trip), then carries out the plan one switch at a time: a ``switch_command`` through the
feeder (confirmed by read-back), and the next step only once the switch's position reads as
commanded. Every command is audited and logged as an event; the fault raises ``feeder_fault``
until the healthy parts are supplied again, and ``section_isolated`` while the section is out.

The repair is reported when the indicator at the faulted section (the indicating switch
farthest from the source) is reset: by the repair crew in the field, or by the operator's
``switch_command`` 3. The service then resets the other latched indicators and returns the
network to its normal state (``flisr.plan_return_to_normal``). A switch that moves outside the
plan while the service acts (a breaker that trips again: the fault is not where the indicators
said), a command refused or not carried out in ``confirm_s`` lock it out (``flisr_lockout``)
until the operator has put every switch back to normal by hand.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal, Protocol

from openmeg.core.audit import AuditLog
from openmeg.core.bus import Bus
from openmeg.core.points import Quality
from openmeg.core.site import Site, network_of
from openmeg.core.store import Store
from openmeg.core.topology import normal_state, switch_index
from openmeg.distribution.feeder_commands import FeederCommands
from openmeg.distribution.flisr import FlisrPlan, plan_from_indicators, plan_return_to_normal
from openmeg.distribution.injections import FloatArray, bus_injections
from openmeg.operation.alarms import Severity, announce_alarm
from openmeg.operation.process_image import Sample

Verb = Literal["open", "close", "reset"]
COMMAND_OF = {"open": 1.0, "close": 2.0, "reset": 3.0}
"""``switch_command`` values of model 64903."""
Phase = Literal["normal", "restoring", "isolated", "returning", "locked_out"]


class _Clock(Protocol):
    def now(self) -> datetime: ...


class Samples(Protocol):
    """Where the points come from: the process image keeper."""

    samples: dict[str, Sample]


@dataclass(kw_only=True)
class Pending:
    switch: str
    verb: Verb
    sent_at: datetime


class FaultRestoration:
    """FLISR of ``site``'s network, acting through ``feeder`` on what ``images`` holds."""

    def __init__(
        self,
        site: Site,
        *,
        feeder: FeederCommands,
        images: Samples,
        clock: _Clock,
        bus: Bus,
        store: Store,
        audit: AuditLog,
        confirm_s: float = 10.0,
        user: str = "flisr",
    ) -> None:
        self.site, self.feeder, self.images, self.clock = site, feeder, images, clock
        self.bus, self.store, self.user = bus, store, user
        self.audit = audit
        self.confirm = timedelta(seconds=confirm_s)
        net_cfg = site.network
        self.switches = [s.id for s in net_cfg.switches] + [t.id for t in net_cfg.ties]
        self.breakers = [s.id for s in net_cfg.switches if s.kind == "breaker"]
        self.net = network_of(site) if self.switches else None
        index = switch_index(self.net) if self.net is not None else {}
        normal = normal_state(self.net) if self.net is not None else {}
        self.normal = {s: normal[index[s]] for s in self.switches}
        self.phase: Phase = "normal"
        self.plan: FlisrPlan | None = None
        self.queue: list[tuple[str, Verb]] = []
        self.pending: Pending | None = None
        self.done: list[tuple[str, Verb]] = []
        """Every step carried out and confirmed, in order."""
        self.active: set[str] = set()
        """The alarms the service holds raised."""
        self.expected = dict(self.normal)
        """Where the switches should be: as found at the trip, then as each step left them."""
        self._estimate: tuple[FloatArray, FloatArray] | None = None

    async def step(self) -> None:
        """One cycle: look at the switches, act on the plan."""
        if self.net is None:
            return
        now = self.clock.now()
        values = {k: s.value for k, s in self.images.samples.items() if s.quality is Quality.GOOD}
        closed = {s: values.get(f"{s}/switch_closed") for s in self.switches}
        latched = {s: values.get(f"{s}/fault_passed") == 1.0 for s in self.switches}
        if any(v is None for v in closed.values()):
            return  # a switch not (yet) heard from: nothing is decided on a partial picture
        position = {s: v == 1.0 for s, v in closed.items()}
        if self.phase == "normal":
            await self._watch(now, values, position, latched)
        elif self.phase == "locked_out":
            if position == self.normal and not any(latched.values()):
                for code in sorted(self.active):
                    await self._alarm(code, "switches back to normal by hand", now, False)
                self.phase = "normal"
        elif await self._moved_outside_the_plan(now, position):
            return
        elif self.pending is not None:
            await self._confirm(now, position, latched)
        if self.pending is None and self.phase in ("restoring", "isolated", "returning"):
            await self._next(now, position, latched)

    async def _watch(
        self,
        now: datetime,
        values: dict[str, float],
        position: dict[str, bool],
        latched: dict[str, bool],
    ) -> None:
        assert self.net is not None
        tripped = [b for b in self.breakers if self.normal[b] and not position[b]]
        indicating = [s for s in self.switches if latched[s]]
        if not (tripped and indicating):
            if position == self.normal and not indicating:
                self._estimate = bus_injections(self.site, self.net, values)
            return
        p, q = self._estimate or bus_injections(self.site, self.net, values)
        try:
            plan = plan_from_indicators(self.net, indicating, p, q, closed=position)
        except (KeyError, ValueError) as err:
            self.expected = dict(position)
            await self._give_up(now, f"{', '.join(tripped)} tripped but cannot be located: {err}")
            return
        self.plan, self.phase, self.queue = plan, "restoring", list(plan.steps)
        self.expected = dict(position)
        where = ", ".join(plan.section_lines)
        await self._alarm(
            "feeder_fault",
            f"{plan.breaker} tripped: fault passage indicators at {', '.join(plan.indicating)}; "
            f"fault located in {where}",
            now,
            True,
        )
        self._event(now, "located", f"fault located in {where}; plan: {_steps(plan.steps)}")

    async def _moved_outside_the_plan(self, now: datetime, position: dict[str, bool]) -> bool:
        """A switch that reads otherwise than the plan left it (protection tripped it: the fault
        is not where the indicators said; or someone else switched it): lockout."""
        moved = [
            s
            for s in self.switches
            if position[s] != self.expected[s]
            and (self.pending is None or s != self.pending.switch)
        ]
        if not moved:
            return False
        what = ", ".join(f"{s} {'closed' if position[s] else 'opened'}" for s in moved)
        await self._give_up(now, f"{what} outside the plan")
        return True

    async def _confirm(
        self, now: datetime, position: dict[str, bool], latched: dict[str, bool]
    ) -> None:
        pending = self.pending
        assert pending is not None
        if pending.verb == "reset":
            there = not latched[pending.switch]
        else:
            there = position[pending.switch] == (pending.verb == "close")
        if there:
            self.done.append((pending.switch, pending.verb))
            if pending.verb != "reset":
                self.expected[pending.switch] = pending.verb == "close"
            self.pending = None
        elif now - pending.sent_at > self.confirm:
            await self._give_up(
                now, f"{pending.switch} does not read {pending.verb} {self.confirm} after"
            )

    async def _next(
        self, now: datetime, position: dict[str, bool], latched: dict[str, bool]
    ) -> None:
        assert self.plan is not None and self.net is not None
        if self.queue:
            switch, verb = self.queue.pop(0)
            await self._command(now, switch, verb)
        elif self.phase == "restoring":
            self.phase = "isolated"
            plan = self.plan
            dark = ", ".join(sorted(str(self.net.bus.at[b, "name"]) for b in plan.section_buses))
            await self._alarm("feeder_fault", "healthy parts supplied again", now, False)
            await self._alarm(
                "section_isolated",
                f"{', '.join(plan.section_lines)} isolated by {', '.join(plan.opened)}; "
                f"dark until repaired: {dark}",
                now,
                True,
                severity="warning",
            )
            self._event(now, "restored", f"isolated and restored: {_steps(self.done)}")
        elif self.phase == "isolated":
            if not latched[self.plan.indicating[-1]]:
                self._return_to_normal(position, latched)
                self._event(now, "repaired", f"repair reported: {_steps(self.queue)}")
                await self._next(now, position, latched)
        else:  # returning, all done
            self.phase = "normal"
            await self._alarm("section_isolated", "repaired: the network is normal", now, False)
            self._event(now, "normal", "the network is back to its normal state")

    def _return_to_normal(self, position: dict[str, bool], latched: dict[str, bool]) -> None:
        """Queue the return to the normal state: reset what is latched, then the switching."""
        assert self.net is not None
        self.phase = "returning"
        self.queue = [(s, "reset") for s in self.switches if latched[s]]
        self.queue += list(plan_return_to_normal(self.net, position))

    async def _command(self, now: datetime, switch: str, verb: Verb) -> None:
        value = COMMAND_OF[verb]
        result = await self.feeder.command(switch, "switch_command", value, user=self.user)
        outcome = "done" if result.accepted else f"refused: {result.reason}"
        self.store.add_event(
            ts=now,
            site=self.site.site.id,
            kind="command",
            source=self.user,
            code="accepted" if result.accepted else "rejected",
            text=f"{self.user} set {switch}/switch_command = {value:g} ({verb}): {outcome}",
            severity="info" if result.accepted else "warning",
        )
        self.audit.append(
            ts=now,
            actor=self.user,
            action="command",
            target=f"{switch}/switch_command",
            detail={"value": value, "accepted": result.accepted, "reason": result.reason},
        )
        if result.accepted:
            self.pending = Pending(switch=switch, verb=verb, sent_at=now)
        else:
            await self._give_up(now, f"{switch} refused to {verb}: {result.reason}")

    async def _give_up(self, now: datetime, why: str) -> None:
        self.phase, self.queue, self.pending = "locked_out", [], None
        await self._alarm("flisr_lockout", f"restoration stopped: {why}; switch by hand", now, True)

    async def _alarm(
        self,
        code: str,
        text: str,
        now: datetime,
        active: bool,
        *,
        severity: Severity = "critical",
    ) -> None:
        if active:
            self.active.add(code)
        else:
            self.active.discard(code)
        await announce_alarm(
            self.bus,
            self.store,
            site=self.site.site.id,
            source="flisr",
            code=code,
            text=text,
            active=active,
            ts=now,
            severity=severity if active else "info",
        )

    def _event(self, now: datetime, code: str, text: str) -> None:
        self.store.add_event(
            ts=now, site=self.site.site.id, kind="flisr", source=self.user, code=code, text=text
        )


def _steps(steps: Iterable[tuple[str, str]]) -> str:
    return ", ".join(f"{verb} {switch}" for switch, verb in steps) or "nothing"
