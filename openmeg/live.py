"""The MEG live for as long as it runs: its store and bus opened, its authorised time taken, the
MEG and its API started, then everything shut down in order."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from openmeg.app import LiveApi, LiveMeg
from openmeg.core.addresses import DeviceAddress
from openmeg.core.bus import Bus, InProcessBus
from openmeg.core.bus_acl import PLATFORM
from openmeg.core.clock import SimClock, WallClock
from openmeg.core.errors import OpenMegError
from openmeg.core.keystore import Keystore
from openmeg.core.scoped_bus import Buses, ScopedBus
from openmeg.core.site import Site
from openmeg.core.store import Store
from openmeg.customer.time_sync import TimeSync
from openmeg.protocols.broker_access import BrokerAccess

if TYPE_CHECKING:
    from openmeg.customer.provisioning_service import ProvisioningService


async def connect_buses(site: str, broker: BrokerAccess | None) -> tuple[Buses, Bus | None]:
    """Each platform component's bus: its own MQTT connection with its own credentials (and
    the broker's ACL), or one in-process bus (returned too, its owner closes it)."""
    if broker is None:
        shared = InProcessBus()
        return Buses.shared(site, shared), shared
    from openmeg.protocols.mqtt import MqttBus

    connected: dict[str, Bus] = {}
    try:
        for name in PLATFORM:
            bus = MqttBus(
                broker.host,
                broker.port,
                client_id=f"openmeg-{site}-{name}-live",
                login=broker.login(name),
            )
            connected[name] = ScopedBus(await bus.connect(), site=site, name=name, owns=True)
    except BaseException:
        for done in connected.values():
            await done.close()
        raise
    return Buses(connected), None


@dataclass(frozen=True, kw_only=True)
class FieldWire:
    """Where the field answers: its Modbus devices, and each BAS's BACnet/IP ``(host, port)``
    by its id (a BAS not named here: at its site file's address)."""

    devices: Sequence[DeviceAddress]
    bas: Mapping[str, tuple[str, int]]


Provisioning = Callable[
    [LiveMeg, FieldWire], AbstractAsyncContextManager["Mapping[str, ProvisioningService]"]
]


@asynccontextmanager
async def live_meg(
    site: Site,
    *,
    speed: float,
    step_s: float,
    store_url: str,
    keystore: Keystore,
    mqtt: BrokerAccess | None,
    field: Callable[[datetime, float], AbstractAsyncContextManager[FieldWire]],
    live_options: dict[str, object],
    api_options: dict[str, object] | None,
    say: Callable[[str], object],
    start_at: datetime | None = None,
    provisioning: Provisioning | None = None,
) -> AsyncIterator[tuple[LiveMeg, LiveApi | None]]:
    """The MEG (and its API with ``api_options``) started on the store at ``store_url`` and a
    bus (the MQTT broker of ``mqtt``, each component logged in as itself, or in-process), on a
    clock ``speed`` times faster than real time from now, or from the authorised time with a
    ``time_sync`` in ``live_options``, or from ``start_at``; ``say`` tells how the time was taken.
    ``field(start, anchor_epoch_s)`` gives where the devices and each BAS answer for as long as
    the MEG runs (a simulated field started on the same clock, or the site file's addresses).
    ``provisioning(meg, wire)``, with the API: the provisioning system of each premises (by its
    id), started for as long as the API runs and attached to it.
    Leaving the block stops them and closes bus and store."""
    db = Store(store_url)
    db.create_schema()
    try:
        buses, shared = await connect_buses(site.site.id, mqtt)
    except BaseException:
        db.close()
        raise

    async def close_bus() -> None:
        await buses.close()
        if shared is not None:
            await shared.close()

    start = start_at or datetime.now(UTC)
    sync = live_options.get("time_sync")
    if sync is not None:
        assert isinstance(sync, TimeSync)
        result = await asyncio.to_thread(sync.sync)
        if result.sample is not None:
            start = sync.clock.now()  # the authorised time
        say(result.alarm or f"on the time of {sync.host}:{sync.port}")
    start = start.replace(microsecond=0)
    anchor = time.time()
    clock = SimClock(start, speed=speed, anchor_epoch_s=anchor)
    try:
        field_cm = field(start, anchor)
        wire = await field_cm.__aenter__()
    except BaseException:
        await close_bus()
        db.close()
        raise
    meg = LiveMeg(
        site,
        clock=clock,
        bus=shared,
        buses=buses,
        store=db,
        keystore=keystore,
        step_s=step_s,
        addresses=wire.devices,
        bas_addresses=wire.bas,
        **live_options,  # type: ignore[arg-type]
    )
    await meg.start()
    web: LiveApi | None = None
    if api_options is not None:
        web = LiveApi(meg, WallClock(), **api_options)  # type: ignore[arg-type]
        try:
            await web.start()
        except OpenMegError:
            await meg.stop()
            await field_cm.__aexit__(None, None, None)
            await close_bus()
            db.close()
            raise
    systems: AbstractAsyncContextManager[Mapping[str, ProvisioningService]] | None = None
    if web is not None and provisioning is not None:
        from openmeg.api.routes_services import attach

        systems = provisioning(meg, wire)
        try:
            attach(web.app, await systems.__aenter__())
        except BaseException:
            await web.stop()
            await meg.stop()
            await field_cm.__aexit__(None, None, None)
            await close_bus()
            db.close()
            raise
    try:
        yield meg, web
    finally:
        if systems is not None and web is not None:
            attach(web.app, {})
            await systems.__aexit__(None, None, None)
        if web is not None:
            await web.stop()
        await meg.stop()
        await field_cm.__aexit__(None, None, None)
        await close_bus()
        db.close()
