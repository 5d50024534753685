"""Composition root: wires site, clock, bus, store, the DER data feeder, the control cycle and
the services of the platform. The field (simulated or real) is reached only over the wire."""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Mapping, Sequence
from typing import Literal

import pandas as pd

from openmeg.api.app import create_app
from openmeg.api.body_limit import MAX_BODY
from openmeg.api.client_address import proxy_networks
from openmeg.api.context import ApiServices
from openmeg.api.field_control import FieldControl
from openmeg.api.stream import StreamHub
from openmeg.core.addresses import DeviceAddress
from openmeg.core.audit import AuditLog, audit_log_of
from openmeg.core.bus import Bus
from openmeg.core.bus_acl import PLATFORM
from openmeg.core.clock import Clock, WallClock
from openmeg.core.command_auth import CommandAuthority
from openmeg.core.edge import Edge
from openmeg.core.errors import OpenMegError
from openmeg.core.identity import Identities, Tokens
from openmeg.core.keystore import Keystore
from openmeg.core.messages import CommandResult
from openmeg.core.scoped_bus import Buses, ScopedBus
from openmeg.core.sessions import Sessions
from openmeg.core.site import Site
from openmeg.core.store import Store
from openmeg.core.wiring import device_networks
from openmeg.customer.bems import Bems
from openmeg.customer.prosumer_economics import ProsumerEconomics
from openmeg.customer.revenue_calc import revenue_devices
from openmeg.customer.time_sync import TimeSync
from openmeg.customer.trading_desk import (
    PriceTrading,
    TradingDesk,
)
from openmeg.der.ratings import CHP, PV, Battery, FuelCell, HeatStorage, Wind
from openmeg.der.wind_curves import library_curve
from openmeg.distribution.fault_restoration import FaultRestoration
from openmeg.distribution.feeder import DerDataFeeder, Subscription
from openmeg.distribution.metering import MeteringService
from openmeg.distribution.outbox import Outbox
from openmeg.distribution.setpoint_writer import SetpointWriter
from openmeg.distribution.writes import Limits
from openmeg.operation.assets import AssetRegistry
from openmeg.operation.commands import FieldCommands
from openmeg.operation.control_loop import ControlLoop
from openmeg.operation.controllers.default import (
    BatteryTarget,
    ChpUnit,
    HeatLedChp,
    SelfConsumption,
)
from openmeg.operation.cycle import ControlCycle, Controller
from openmeg.operation.device_adds import DeviceAdds
from openmeg.operation.historian import Historian
from openmeg.operation.mdms.gaps import GapFiller
from openmeg.operation.mdms.ingest import IngestService
from openmeg.operation.mdms.vee import VeeConfig
from openmeg.operation.mdms.vee_service import VeeService
from openmeg.operation.process_image import ImageKeeper
from openmeg.operation.runtime import Runtime, Status
from openmeg.operation.scada import PLATFORM_SOURCES, DerManagementServer, site_limits
from openmeg.protocols.bacnet_client import BacnetClient
from openmeg.protocols.http_server import HttpServer
from openmeg.protocols.mqtt import MqttBus
from openmeg.provider.peak_watch import PeakWatch
from openmeg.provider.price_signal import PriceSignals


def default_controllers(site: Site, desk: TradingDesk | None = None) -> list[Controller]:
    """The controllers the site file asks for, built from its devices and meters (price
    trading needs the trading desk)."""
    meter_of = {d: m.id for m in site.meters for d in m.devices}
    out: list[Controller] = []
    for c in site.controllers:
        if not c.enabled:
            continue
        if c.kind == "self_consumption":
            targets = [
                BatteryTarget(
                    battery=b.id,
                    meter="pcc" if b.owner == "community" else meter_of[b.id],
                    reserve_soc=b.reserve_soc,
                    rating_kw=max(b.p_charge_max_kw, b.p_discharge_max_kw),
                )
                for b in site.devices_of("battery")
            ]
            out.append(SelfConsumption(targets=targets, priority=c.priority))
        elif c.kind == "heat_led_chp":
            units = []
            for chp in site.devices_of("chp"):
                hs = site.device_as(chp.heat_storage, HeatStorage)
                units.append(
                    ChpUnit(
                        chp=chp.id,
                        heat_storage=hs.id,
                        eta_el=chp.eta_el,
                        eta_th=chp.eta_th,
                        p_min_kw=chp.p_el_min_kw,
                        p_max_kw=chp.p_el_max_kw,
                        heat_capacity_kwh=hs.capacity_kwh,
                    )
                )
            out.append(HeatLedChp(units=units, priority=c.priority))
        elif c.kind == "price_trading" and desk is not None:
            out.append(PriceTrading(desk=desk, priority=c.priority))
    return out


def setpoint_limits(site: Site) -> dict[str, Limits]:
    """What the site file's ratings allow each dispatchable device (kW, discharge positive)."""
    out: dict[str, Limits] = {}
    for d in site.devices:
        if isinstance(d, Battery):
            out[d.id] = Limits(p_min_kw=-d.p_charge_max_kw, p_max_kw=d.p_discharge_max_kw)
        elif isinstance(d, CHP):
            out[d.id] = Limits(p_min_kw=0.0, p_max_kw=d.p_el_max_kw)
        elif isinstance(d, FuelCell):
            out[d.id] = Limits(p_min_kw=0.0, p_max_kw=d.p_max_kw)
        elif isinstance(d, PV):
            out[d.id] = Limits(p_min_kw=0.0, p_max_kw=d.inverter_kw)
        elif isinstance(d, Wind):
            _, powers, nominal = library_curve(d.turbine_type)
            scale = (d.rated_kw / nominal) if d.rated_kw else 1.0
            out[d.id] = Limits(p_min_kw=0.0, p_max_kw=max(powers) * scale)
    return out


class LiveMeg:
    """The MEG live: the platform operating a field (simulated or real) over the wire.

    Every cycle the DER data feeder polls the devices at ``addresses`` and delivers what changed
    on the bus; the process image takes it in; the controllers run on it; the write phase sends
    their setpoints down the wire, confirmed by reading back. The head-end turns meter registers
    into interval readings and publishes them for the MDMS ingest; the historian archives what
    travels on the bus; the SCADA keeps the operator's picture.

    ``run`` runs the control loop and every service as tasks of one ``asyncio.TaskGroup``;
    ``step`` (for lockstep with a simulated field) runs one control cycle, then lets every
    service take what is waiting for it, in a fixed order. Never both at once.
    """

    def __init__(
        self,
        site: Site,
        *,
        clock: Clock,
        bus: Bus | None = None,
        buses: Buses | None = None,
        store: Store,
        keystore: Keystore,
        addresses: Sequence[DeviceAddress] = (),
        step_s: float = 1.0,
        persist_every_s: float = 60.0,
        snapshot_every_s: float = 300.0,
        market_prices: pd.DataFrame | None = None,
        price_url: str | None = None,
        price_hold_alarm_s: float = 30.0,
        time_sync: TimeSync | None = None,
        time_sync_every_s: float = 64.0,
        revert_s: int = 30,
        manual_hold_s: float = 900.0,
        retry_connect_s: float = 30.0,
        wall: Clock | None = None,
        command_key: str | bytes | None = None,
        bas_addresses: Mapping[str, tuple[str, int]] | None = None,
        bas_poll_s: float = 300.0,
    ) -> None:
        """``addresses``: where the devices answer (host, port, unit id), each under its id.

        Market prices: from a price server at ``price_url`` (HTTP), or else published on the
        bus by an embedded market from ``market_prices`` (``interval_start, buy, sell``;
        default: seeded synthetic prices for a year from the start).

        ``revert_s``: the revert timeout written with every setpoint (a device that hears
        nothing for that long reverts by itself); ``manual_hold_s``: how long an operator's
        command on a point keeps the controllers off it.

        Each service connects as its component of the bus (``buses``, e.g. an MQTT connection
        with its own credentials each), or through one ``bus`` that holds each component to
        its own topics (``Buses.shared``). ``keystore``: the site's secrets (the audit key, the
        token signing key). ``command_key``: the token signing key that operators'
        authorisations of commands and device adds from the bus are verified with (default:
        the keystore's), against real time (``wall``, default the system's clock).

        ``bas_addresses``: with it, each BAS of the site gets its energy management, polling
        it every ``bas_poll_s`` (default 5 minutes, a BAS's usual trend interval) over
        BACnet/IP at the ``(host, port)`` given under its id (or else at its site file's
        address)."""
        site_id = site.site.id
        if buses is None:
            if bus is None:
                raise TypeError("LiveMeg needs a bus or the buses of its components")
            buses = Buses.shared(site_id, bus)
        self.buses = buses
        self.site, self.clock, self.step_s = site, clock, step_s
        self.bus = bus if bus is not None else buses.of("operation")
        self.store, self.keystore = store, keystore
        self.audit = audit_log_of(store, keystore)
        self.addresses = list(addresses)
        operation = buses.of("operation")
        self.edge = Edge(site_id, operation, clock)  # what every service refuses, counted once
        self._mqtt = mqtt_buses(buses, bus)
        for mqtt in self._mqtt:
            mqtt.edge = self.edge
        self._domains = site.domains()
        self.economics = ProsumerEconomics(
            site,
            clock=clock,
            bus=buses.of("customer"),
            market_bus=buses.of("market"),
            store=store,
            audit=self.audit,
            market_prices=market_prices,
            price_url=price_url,
            price_hold_alarm_s=price_hold_alarm_s,
            time_sync=time_sync,
            time_sync_every_s=time_sync_every_s,
            edge=self.edge,
        )
        self.book, self.trading = self.economics.book, self.economics.trading
        self.desk, self.local_market = self.economics.desk, self.economics.local_market
        self.readings = self.economics.readings
        self.feeder = DerDataFeeder(
            site_id,
            buses.of("feeder"),
            clock,
            poll_period_s=step_s,
            snapshot_every_s=snapshot_every_s,
            domains=site.domains(),
        )
        self.writer = SetpointWriter(
            site_id, self.feeder, operation, limits=setpoint_limits(site), revert_s=revert_s
        )
        self.images = ImageKeeper(
            site_id,
            operation,
            local=lambda d: d in self.feeder.links,
            known=self.known_device,
            gate=self.edge.gate("process_image"),
        )
        self.feeder.listeners.append(self.images.take)
        self.restoration = FaultRestoration(
            site,
            feeder=self.feeder,
            images=self.images,
            clock=clock,
            bus=operation,
            store=store,
            audit=self.audit,
        )
        self.runtime = Runtime(
            site_id,
            self.images,
            ControlCycle(default_controllers(site, self.desk)),
            lambda setpoints, now: self.field_commands.write_phase(setpoints, now),
            clock=clock,
            bus=operation,
            store=store,
            batteries=tuple(b.id for b in site.devices_of("battery")),
        )
        self.wall = wall or WallClock()
        key = command_key if command_key is not None else Identities(store).signing_key(keystore)
        self.authority = CommandAuthority(key, site=site_id, not_before=self.wall.now())
        self.field_commands = FieldCommands(
            site_id,
            feeder=self.feeder,
            writer=self.writer,
            bus=operation,
            clock=clock,
            status=self.runtime.status,
            authority=self.authority,
            audit=self.audit,
            wall=self.wall,
            manual_hold_s=manual_hold_s,
        )
        self.persist_every = max(1, round(persist_every_s / step_s))
        self.historian = Historian(
            site_id,
            operation,
            store,
            sample_every_s=persist_every_s,
            known=self.known_device,
            gate=self.edge.gate("historian"),
        )
        self.scada = DerManagementServer(
            site_id,
            operation,
            store,
            limits=site_limits(site),
            commander=self.field_commands.operator_write,
            audit=self.audit,
            known=self.known_device,
            known_source=self.known_source,
            gate=self.edge.gate("scada"),
        )
        self.assets = AssetRegistry(site_id, store)
        self.device_adds = DeviceAdds(
            site_id,
            feeder=self.feeder,
            writer=self.writer,
            runtime=self.runtime,
            assets=self.assets,
            audit=self.audit,
            bus=operation,
            clock=clock,
            authority=self.authority,
            wall=self.wall,
            networks=device_networks(site),
            retry_connect_s=retry_connect_s,
        )
        self.control = ControlLoop(
            clock=clock,
            step_s=step_s,
            adds=self.device_adds,
            feeder=self.feeder,
            restoration=self.restoration,
            commands=self.field_commands,
            command=self.command,
            runtime=self.runtime,
        )
        meters = {m.id for m in site.meters}
        device_meters = set(revenue_devices(site))
        self.metering = MeteringService(
            site_id,
            buses.of("head-end"),
            clock,
            meters=meters,
            device_meters=device_meters,
            record_registers=lambda rows: store.in_thread(self.readings.add_registers, rows),
            max_kw=site.meter_max_kw(),
            known=set(self._domains),
            gate=self.edge.gate("head_end"),
            outbox=Outbox(store),
            read_registers=lambda m, c, a, b: store.in_thread(self.readings.registers, m, c, a, b),
        )
        self.ingest = IngestService(
            site_id,
            None,
            store,
            meters | device_meters,
            bus=buses.of("mdms"),
            clock=clock,
            max_interval_kwh=site.meter_max_kw() * 0.25,
        )
        self.gaps = GapFiller(site_id, buses.of("mdms"), store, meters | device_meters, clock=clock)
        self.vee = VeeService(
            site_id,
            store,
            meters | device_meters,
            VeeConfig(timezone=site.site.timezone, **site.vee.model_dump()),
            clock=clock,
            bus=buses.of("mdms"),
            consumers=meters,
        )
        self.bems = bems_of(
            site,
            bas_addresses,
            bus=buses.of("feeder"),
            clock=clock,
            audit=self.audit,
            store=store,
            poll_s=bas_poll_s,
        )
        self._bas_devices = {b.id for b in site.bas} | {e.id for b in site.bas for e in b.equipment}
        self._bems_of = {e.id: m for m in self.bems.values() for e in m.bas.equipment}
        self.prices = PriceSignals(site, buses.of("provider"))
        self.peaks = PeakWatch(site, buses.of("provider"), self.edge.gate("peak_watch"))
        self._tasks_run = False

    def known_device(self, device: str) -> bool:
        """Whether ``device`` is the site's: in its site file, polled, or added as an asset."""
        return (
            device in self._domains
            or device in self.feeder.links
            or device in self.assets.assets
            or (device in self._bas_devices and bool(self.bems))
        )

    def known_source(self, source: str) -> bool:
        """Whether an alarm may come from ``source``: a device, a controller, or a part of
        the platform."""
        return (
            self.known_device(source)
            or source in PLATFORM_SOURCES
            or source in self.edge.services
            or any(c.name == source for c in self.runtime.cycle.controllers)
        )

    @property
    def status(self) -> Status:
        return self.runtime.status

    @property
    def readings_ingested(self) -> int:
        return self.ingest.stored

    async def start(self) -> None:
        """Listen on the bus, start the services, connect the feeder to every device."""
        await self.images.start()
        await self.economics.start()
        await self.historian.start()
        await self.scada.start()
        await self.metering.start()
        await self.ingest.start()
        await self.vee.start()
        await self.peaks.start()
        await self.field_commands.start()
        for bems in self.bems.values():
            await bems.start()
        self.feeder.subscribe(Subscription(device="*", point="*", interval_s=self.step_s))
        await self.device_adds.start(self.addresses)

    async def step(self) -> None:
        """One cycle in lockstep: the prices and the desk, poll the field, control, write;
        then each service takes what is waiting: meter, store the readings, account, archive."""
        if self._tasks_run:
            raise RuntimeError("the services run as tasks (LiveMeg.run): step is for lockstep")
        now = self.clock.now()
        await self.economics.before_cycle(now)
        await self.control.poll_phase()
        await self.control.control_phase()
        await self.prices.update(now)
        await self.metering.pump()
        await self.ingest.pump()
        await self.gaps.pump()
        await self.vee.pump()
        await self.peaks.pump()
        await self.economics.pump()
        await self.historian.pump()
        for bems in self.bems.values():
            await bems.due(now)
        await self.scada.pump()
        if self.status.cycles % self.persist_every == 0:
            await self.historian.write_buffer()

    async def run(self, stop: asyncio.Event, *, max_cycles: int | None = None) -> None:
        """The control loop, a cycle every ``step_s`` of the clock, and every service as tasks
        of one ``TaskGroup``, until ``stop`` is set or ``max_cycles`` ran; then each service
        takes what was waiting for it and ends, and the closed local days VEE validated are
        settled."""
        halt = asyncio.Event()

        async def control() -> None:
            try:
                await self.control.run(halt, max_cycles=max_cycles)
            finally:
                halt.set()

        async def relay() -> None:
            await first_of(stop, halt)
            halt.set()

        await self.economics.before_cycle()  # the desk decides before the first cycle
        self._tasks_run = True
        try:
            async with asyncio.TaskGroup() as tasks:
                tasks.create_task(relay(), name="stop")
                for service in (
                    self.economics,
                    self.historian,
                    self.scada,
                    self.metering,
                    self.ingest,
                    self.gaps,
                    self.vee,
                    self.peaks,
                    self.prices,
                ):
                    tasks.create_task(service.run(halt), name=type(service).__name__)
                for bems in self.bems.values():
                    tasks.create_task(bems.run(halt), name=f"Bems {bems.bas.id}")
                tasks.create_task(control(), name="control loop")
        finally:
            self._tasks_run = False
        # the services took what was waiting; the days closed by now validated, then settled
        await self.vee.pump()
        await self.economics.settle_closed_days()

    async def stop(self) -> None:
        """Store the latest points, close the wire."""
        await self.historian.stop()
        await self.scada.stop()
        self.feeder.close()
        await self.economics.stop()
        await self.images.stop()
        for service in (
            self.metering,
            self.ingest,
            self.vee,
            self.peaks,
            self.field_commands,
            self.device_adds,
        ):
            await service.stop()
        for bems in self.bems.values():
            await bems.stop()

    async def command(
        self, device: str, name: str, value: float, user: str, reason: str = ""
    ) -> CommandResult:
        """Carry out an operator's command through the field; the device's answer. ``reason``:
        why the operator gives it (logged with the command)."""
        bems = self._bems_of.get(device)
        if bems is not None:  # a piece of a premises' BAS equipment
            return await bems.command_result(device, name, value, actor=user, reason=reason)
        return await self.scada.command(
            device, name, value, user=user, ts=self.clock.now(), reason=reason
        )

    def figures(self) -> dict[str, float]:
        """Running figures for the metrics."""
        return {
            "cycle_time_ms": self.status.cycle_ms,
            "cycles": float(self.status.cycles),
            "feeder_poll_ms": self.control.poll_ms,
            "feeder_devices": float(len(self.feeder.links)),
            "readings_ingested": float(self.ingest.stored),
            "vee_days_validated": float(self.vee.days_validated),
            "vee_failures": float(self.vee.problems),
            "alarms_active": float(len(self.scada.alarms(active_only=True))),
            "commands": float(self.status.commands),
            "setpoint_writes": float(self.writer.writes_total),
            "bus_inputs_refused": float(self.edge.total),
            "bus_messages_undecodable": float(sum(m.rejected for m in self._mqtt)),
        }


def bems_of(
    site: Site,
    addresses: Mapping[str, tuple[str, int]] | None,
    *,
    bus: Bus,
    clock: Clock,
    audit: AuditLog,
    store: Store,
    poll_s: float,
) -> dict[str, Bems]:
    """The energy management of each BAS of ``site`` at ``addresses`` (none without them)."""
    if addresses is None:
        return {}
    out = {}
    for bas in site.bas:
        host, port = addresses.get(bas.id, (bas.host, bas.port))
        out[bas.id] = Bems(
            site.site.id,
            bas,
            client=BacnetClient(bas, host=host, port=port),
            bus=bus,
            clock=clock,
            audit=audit,
            timezone=site.site.timezone,
            store=store,
            poll_every_s=poll_s,
        )
    return out


def mqtt_buses(buses: Buses, bus: Bus | None) -> list[MqttBus]:
    """The MQTT connections under the components' buses (each counted once)."""
    out: list[MqttBus] = []
    for b in [bus, *(buses.of(c) for c in PLATFORM)]:
        inner = b.inner if isinstance(b, ScopedBus) else b
        if isinstance(inner, MqttBus) and inner not in out:
            out.append(inner)
    return out


async def first_of(*events: asyncio.Event) -> None:
    """Return once any of ``events`` is set."""
    waiters = [asyncio.ensure_future(e.wait()) for e in events]
    try:
        await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for w in waiters:
            w.cancel()
        await asyncio.wait(waiters)


def api_services(meg: LiveMeg, wall: Clock, *, token_ttl_s: float = 900.0) -> ApiServices:
    """What the API serves from, for a live MEG; real time (``wall``) for tokens and logins."""
    identities = Identities(meg.store)
    return ApiServices(
        site=meg.site,
        store=meg.store,
        bus=meg.bus,
        clock=meg.clock,
        wall=wall,
        identities=identities,
        tokens=Tokens(
            identities.signing_key(meg.keystore), issuer=meg.site.site.id, ttl_s=token_ttl_s
        ),
        sessions=Sessions(meg.store),
        audit=meg.audit,
        scada=meg.scada,
        status=lambda: meg.status,
        command=meg.command,
        readings=meg.readings,
        trading=meg.trading,
        book=meg.book,
        local_market=meg.local_market,
        figures=meg.figures,
        assets=lambda: meg.assets.assets,
        authority=meg.authority,
        bems=meg.bems,
    )


class LiveApi:
    """The API and dashboard of a live MEG, served in its event loop."""

    def __init__(
        self,
        meg: LiveMeg,
        wall: Clock,
        *,
        trusted_proxies: Sequence[str] = (),
        max_body_bytes: int = MAX_BODY,
        host: str = "127.0.0.1",
        port: int = 8000,
        ssl_context: ssl.SSLContext | None = None,
        field: Literal["simulated", "site"] = "site",
        field_control: str | None = None,
    ) -> None:
        """``field_control``: the URL of the simulated field's control interface (the
        simulator panel's controls), for a simulated field."""
        self.services = api_services(meg, wall)
        self.services.field_kind = field
        if field_control is not None and field == "simulated":
            self.services.field_control = FieldControl(field_control)
        self.hub = StreamHub(meg.site.site.id, meg.bus, gate=meg.edge.gate("stream"))
        self.app = create_app(self.services, self.hub)
        self.server = HttpServer(
            self.app,
            host=host,
            port=port,
            ssl_context=ssl_context,
        )
        self.admin_password: str | None = None
        self.services.trusted_proxies = proxy_networks(trusted_proxies)
        self.services.max_body_bytes = max_body_bytes

    async def start(self) -> None:
        """Listen; on the first run, create the operator ``admin`` (password kept here once)."""
        self.admin_password = self.services.identities.ensure_admin(self.services.clock.now())
        await self.hub.start()
        try:
            await self.server.start()
        except OpenMegError:
            await self.hub.stop()
            raise

    async def stop(self) -> None:
        await self.server.stop()
        await self.hub.stop()
