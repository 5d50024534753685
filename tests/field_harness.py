"""The platform and a simulated field in one event loop, meeting only at the wire (Modbus TCP on
127.0.0.1, free ports), stepped in lockstep on one simulated clock so that tests are exact: the
field steps its physics, then the platform runs one cycle against it."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from openmeg.app import LiveMeg
from openmeg.core.addresses import DeviceAddress
from openmeg.core.bus import Bus
from openmeg.core.clock import SimClock
from openmeg.core.site import Site, load_site
from openmeg.core.store import Store
from openmeg.sim.field import Field


@dataclass(kw_only=True)
class LiveSite:
    field: Field
    meg: LiveMeg
    clock: SimClock
    step_s: float

    async def step(self, n: int = 1) -> None:
        """``n`` cycles: the field steps to the next instant, then the platform polls, controls
        and writes at that instant."""
        for _ in range(n):
            self.field.step()
            self.clock.advance(self.step_s)
            await self.meg.step()

    async def stop(self) -> None:
        await self.meg.stop()
        await self.field.stop()

    def writes(self, device: str) -> int:
        return self.field.servers.devices[device].writes


def addresses(field: Field, *, without: frozenset[str] = frozenset()) -> list[DeviceAddress]:
    return [
        DeviceAddress(id=w.id, host=w.host, port=w.port, unit=w.unit)
        for w in field.plan
        if w.id not in without
    ]


async def live_site(
    bus: Bus | None,
    store: Store,
    *,
    start: datetime,
    step_s: float = 1.0,
    site: Site | None = None,
    without: frozenset[str] = frozenset(),
    horizon_h: float = 1.0,
    **meg_options: Any,
) -> LiveSite:
    """The demo (or ``site``) as a field on free ports and the platform connected to it (less
    the devices ``without``); the platform's first cycle is at ``start``, after the field's
    first step up to it. ``bus`` None: give ``buses`` (each component's own bus)."""
    site = site or load_site("demo")
    clock = SimClock(start - timedelta(seconds=step_s))
    field = Field(site, clock=clock, step_s=step_s, base_port=0, horizon_h=horizon_h)
    await field.start()
    meg = LiveMeg(
        site,
        clock=clock,
        bus=bus,
        store=store,
        addresses=addresses(field, without=without),
        step_s=step_s,
        **meg_options,
    )
    await meg.start()
    return LiveSite(field=field, meg=meg, clock=clock, step_s=step_s)
