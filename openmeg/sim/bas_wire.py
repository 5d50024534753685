"""The simulated building automation systems on the wire: each BAS of the site one BACnet/IP
device, its points read live from the building's plant and its writes commanded to it.

A BAS answers at the host and port its site file gives; with ``free_ports`` each is served on
``host`` at a free port taken when it starts (``BasServers.start`` tells which).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any, Protocol

from openmeg.core.bas_scenario import scenario_of
from openmeg.core.scenario_file import simulated_scenario
from openmeg.core.site import Site
from openmeg.protocols.bacnet import BacnetServer
from openmeg.sim.physics.building import BuildingPlant


class BasPlant(Protocol):
    """What a BAS on the wire needs of the building plant behind it."""

    def read(self) -> dict[str, float]: ...

    def command(self, name: str, value: float) -> None: ...

    def relinquish(self, name: str) -> None: ...


def building_plants(site: Site) -> dict[str, BuildingPlant]:
    """The building plant of each BAS of ``site``, with its scenario's faults and events."""
    if not site.bas:
        return {}
    scenario = simulated_scenario(site)
    own = scenario_of(site.bas, scenario.bas_faults, scenario.bas_events)
    return {
        bas.id: BuildingPlant(
            bas, timezone=site.site.timezone, faults=own[bas.id][0], events=own[bas.id][1]
        )
        for bas in site.bas
    }


@dataclass(frozen=True, kw_only=True)
class WireBas:
    """Where a BAS answers on the wire."""

    id: str
    premises: str
    host: str
    port: int
    device_instance: int
    objects: int

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


class BasServers:
    """The BACnet/IP servers of every BAS of ``site`` (those in ``only``), each backed by
    ``plants[bas.id]``."""

    def __init__(
        self,
        site: Site,
        plants: Mapping[str, BasPlant],
        *,
        host: str = "127.0.0.1",
        free_ports: bool = False,
        only: frozenset[str] | None = None,
    ) -> None:
        self.systems = [b for b in site.bas if only is None or b.id in only]
        missing = [b.id for b in self.systems if b.id not in plants]
        if missing:
            raise ValueError(f"no building plant for the BAS {', '.join(missing)}")
        self.site = site
        self.servers = {
            b.id: BacnetServer(
                b,
                values=plants[b.id].read,
                command=plants[b.id].command,
                relinquish=plants[b.id].relinquish,
                host=host if free_ports else b.host,
                port=0 if free_ports else b.port,
            )
            for b in self.systems
        }

    @property
    def plan(self) -> list[WireBas]:
        """Every BAS with its address (the port bound once started)."""
        return [
            WireBas(
                id=b.id,
                premises=b.premises,
                host=self.servers[b.id].host,
                port=self.servers[b.id].port,
                device_instance=b.device_instance,
                objects=len(b.objects()),
            )
            for b in self.systems
        ]

    async def start(self) -> list[WireBas]:
        """Put every BAS on the wire (``DeviceError`` if a port is taken); the plan."""
        try:
            for server in self.servers.values():
                await server.start()
        except BaseException:
            await self.stop()
            raise
        return self.plan

    async def stop(self) -> None:
        for server in self.servers.values():
            await server.stop()

    def status(self) -> list[dict[str, Any]]:
        """Each BAS's address and how many writes it took and refused lately."""
        return [
            {
                **w.as_dict(),
                "writes": sum(not r.error for r in self.servers[w.id].writes),
                "refused": sum(bool(r.error) for r in self.servers[w.id].writes),
            }
            for w in self.plan
        ]
