"""Composition root: wires site, clock, bus, store, the simulated plant and the control cycle."""

from __future__ import annotations

import asyncio
import time
from datetime import datetime
from pathlib import Path

import pandas as pd

from openmeg.api.app import create_app
from openmeg.api.context import ApiServices
from openmeg.api.server import ApiServer
from openmeg.api.stream import StreamHub
from openmeg.core.audit import AuditLog
from openmeg.core.bus import Bus
from openmeg.core.bus import Subscription as BusSubscription
from openmeg.core.clock import Clock
from openmeg.core.errors import DeviceError, OpenMegError
from openmeg.core.identity import Identities, Tokens
from openmeg.core.messages import (
    CommandMessage,
    CommandResult,
    DeviceAdd,
    DeviceAdded,
    PointUpdate,
    command_result_topic,
    command_topic,
    device_add_topic,
    device_added_topic,
    parse_device_address,
    readings_topic,
)
from openmeg.core.site import Site
from openmeg.core.store import Store
from openmeg.customer.prosumer_economics import ProsumerEconomics
from openmeg.customer.revenue_calc import revenue_devices
from openmeg.customer.time_sync import TimeSync
from openmeg.customer.trading_desk import (
    PriceTrading,
    TradingDesk,
)
from openmeg.der.ratings import HeatStorage
from openmeg.distribution.feeder import DerDataFeeder, Subscription
from openmeg.distribution.head_end import DEVICE_REGISTERS, HeadEnd
from openmeg.operation.controllers.default import (
    BatteryTarget,
    ChpUnit,
    HeatLedChp,
    SelfConsumption,
)
from openmeg.operation.cycle import ControlCycle, Controller
from openmeg.operation.historian import Historian
from openmeg.operation.runtime import Runtime, Status
from openmeg.operation.scada import DerManagementServer, site_limits
from openmeg.provider.peak_watch import PeakWatch
from openmeg.provider.price_signal import PriceSignals
from openmeg.sim.live_plant import SimulatedPlant
from openmeg.sim.wire import DeviceServers


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


class LiveMeg:
    """The MEG live. The runtime operates the simulated plant every cycle; the historian
    archives what travels on the bus; with ``modbus_port`` set, every simulated device also
    answers on Modbus TCP and the DER data feeder delivers its changed data to the bus."""

    def __init__(
        self,
        site: Site,
        *,
        clock: Clock,
        bus: Bus,
        store: Store,
        step_s: float = 1.0,
        persist_every_s: float = 60.0,
        horizon_h: float = 24.0,
        modbus_port: int | None = None,
        snapshot_every_s: float = 300.0,
        connect: frozenset[str] | None = None,
        market_prices: pd.DataFrame | None = None,
        price_url: str | None = None,
        price_hold_alarm_s: float = 30.0,
        time_sync: TimeSync | None = None,
        time_sync_every_s: float = 64.0,
    ) -> None:
        """``connect``: the devices the feeder connects at start (default: all on the wire).

        Market prices: from a price server at ``price_url`` (HTTP), or else published on the
        bus by an embedded market from ``market_prices`` (``interval_start, buy, sell``;
        default: seeded synthetic prices for a year from the start).

        ``time_sync``: the time synchronous unit, asked every ``time_sync_every_s`` of plant
        time; an alarm while the time server is silent or the clock was off too far."""
        self.site, self.clock, self.bus, self.step_s = site, clock, bus, step_s
        self.store = store
        self.plant = SimulatedPlant(site, start=clock.now(), step_s=step_s, horizon_h=horizon_h)
        self.economics = ProsumerEconomics(
            site,
            clock=self.plant_clock,
            bus=bus,
            store=store,
            market_prices=market_prices,
            price_url=price_url,
            price_hold_alarm_s=price_hold_alarm_s,
            time_sync=time_sync,
            time_sync_every_s=time_sync_every_s,
        )
        self.book, self.trading = self.economics.book, self.economics.trading
        self.desk, self.local_market = self.economics.desk, self.economics.local_market
        self.readings_ingested = 0
        self.feeder_poll_ms = 0.0
        self.servers: DeviceServers | None = None
        self.feeder: DerDataFeeder | None = None
        on_wire: set[str] = set()
        if modbus_port is not None:
            self.servers = DeviceServers(
                site, self.plant.read, self.plant.command, base_port=modbus_port
            )
            on_wire = {w.id for w in self.servers.plan}
            self.feeder = DerDataFeeder(
                site.site.id,
                bus,
                self.plant_clock,
                poll_period_s=step_s,
                snapshot_every_s=snapshot_every_s,
                domains=site.domains(),
            )
        self.runtime = Runtime(
            site.site.id,
            self.plant,
            ControlCycle(default_controllers(site, self.desk)),
            clock=clock,
            bus=bus,
            store=store,
            step_s=step_s,
            persist_every_s=persist_every_s,
            domains=site.domains(),
            publish=lambda device: device not in on_wire,
        )
        self.historian = Historian(site.site.id, bus, store, sample_every_s=persist_every_s)
        self.scada = DerManagementServer(
            site.site.id,
            bus,
            store,
            limits=site_limits(site),
            commander=self.feeder.command if self.feeder is not None else None,
        )
        self._adds: BusSubscription | None = None
        self._connect = connect
        self.head_end = HeadEnd(site.site.id, {m.id for m in site.meters})
        self.device_meters = HeadEnd(
            site.site.id, set(revenue_devices(site)), registers=DEVICE_REGISTERS
        )
        self.prices = PriceSignals(site, bus)
        self.peaks = PeakWatch(site, bus)
        self.readings = self.economics.readings
        self._registers: list[BusSubscription] = []
        self._meter_ids = {m.id for m in site.meters} | self.device_meters.meters

    @property
    def plant_clock(self) -> _PlantClock:
        return _PlantClock(self.plant)

    @property
    def status(self) -> Status:
        return self.runtime.status

    async def start(self) -> None:
        """Listen for commands, start the historian, put the devices on the wire."""
        await self.runtime.start()
        await self.economics.start()
        await self.historian.start()
        await self.scada.start()
        if self.servers is not None and self.feeder is not None:
            for w in await self.servers.start():
                if self._connect is None or w.id in self._connect:
                    await self.feeder.add(w.host, w.port, w.unit)
            self.feeder.subscribe(Subscription(device="*", point="*", interval_s=self.step_s))
            self._adds = await self.bus.subscribe(device_add_topic(self.site.site.id))
        self._registers = [
            await self.bus.subscribe(f"meg/{self.site.site.id}/{pattern}")
            for pattern in ("customer/+/+", "+/+/energy_kwh", "+/+/energy_in_kwh")
        ]

    async def step(self) -> None:
        await self.economics.before_cycle()
        await self.runtime.step()
        await self.prices.update(self.plant.time)
        if self.feeder is not None:
            await self._handle_device_adds()
            t0 = time.perf_counter()
            await self.feeder.poll()
            self.feeder_poll_ms = (time.perf_counter() - t0) * 1000.0
        await self._collect_readings()
        await self.historian.pump()
        await self.scada.pump()
        if self.status.cycles % self.runtime.persist_every == 0:
            self.historian.flush()

    async def run(self, stop: asyncio.Event, *, max_cycles: int | None = None) -> None:
        """Cycle every ``step_s`` of the clock until ``stop`` is set or ``max_cycles`` ran."""
        while not stop.is_set() and (max_cycles is None or self.status.cycles < max_cycles):
            await self.step()
            await self.clock.sleep(self.step_s)

    async def stop(self) -> None:
        """Store the state and the latest points, close the wire."""
        self.runtime.flush()
        await self.historian.stop()
        await self.scada.stop()
        if self.feeder is not None:
            self.feeder.close()
        if self.servers is not None:
            await self.servers.stop()
        await self.economics.stop()
        for sub in (self._adds, *self._registers):
            if sub is not None:
                await self.bus.unsubscribe(sub)
        self._adds, self._registers = None, []

    async def _collect_readings(self) -> None:
        """The head-end turns meter registers into 15-minute readings, and the devices' own
        meters into theirs (for their revenue); the MDMS stores them."""
        for sub in self._registers:
            while sub.pending():
                _, msg = await sub.get()
                if isinstance(msg, PointUpdate):
                    self.head_end.observe(msg)
                    self.device_meters.observe(msg)
        now = self.plant.time
        closed = self.head_end.tick(now)
        closed_devices = self.device_meters.tick(now)
        for head in (self.head_end, self.device_meters):
            self.readings.add_registers(head.register_reads)
            head.register_reads.clear()
        for batch in closed:
            await self.bus.publish(readings_topic(self.site.site.id, batch.meter), batch)
            await self.peaks.observe(batch)
        if closed or closed_devices:
            rows = [
                (b.meter, b.channel, r.interval_start, r.value_kwh)
                for b in closed + closed_devices
                for r in b.readings
            ]
            frame = pd.DataFrame(rows, columns=["meter", "channel", "interval_start", "value_kwh"])
            report = self.readings.ingest(
                frame, meters=self._meter_ids, source="head-end", received_at=now
            )
            self.readings_ingested += report.new
        await self.economics.after_intervals(closed)

    async def command(self, device: str, name: str, value: float, user: str) -> CommandResult:
        """Carry out an operator's command: through the field (the DER data feeder) when the
        device serves the point on the wire, else through the runtime; the device's answer."""
        link = self.feeder.links.get(device) if self.feeder is not None else None
        if link is not None and name in {p.point for p in link.device.points if p.writable}:
            return await self.scada.command(device, name, value, user=user, ts=self.plant.time)
        site = self.site.site.id
        results = await self.bus.subscribe(command_result_topic(site, device, name))
        try:
            await self.bus.publish(
                command_topic(site, device, name),
                CommandMessage(
                    site=site, device=device, name=name, value=value, ts=self.plant.time, user=user
                ),
            )
            while True:
                _, msg = await results.get(timeout=10.0)
                if isinstance(msg, CommandResult):
                    return msg
        finally:
            await self.bus.unsubscribe(results)

    def figures(self) -> dict[str, float]:
        """Running figures for the metrics."""
        return {
            "cycle_time_ms": self.status.cycle_ms,
            "cycles": float(self.status.cycles),
            "feeder_poll_ms": self.feeder_poll_ms,
            "feeder_devices": float(len(self.feeder.links)) if self.feeder is not None else 0.0,
            "readings_ingested": float(self.readings_ingested),
            "alarms_active": float(len(self.scada.alarms(active_only=True))),
            "commands": float(self.status.commands),
        }

    async def _handle_device_adds(self) -> None:
        assert self.feeder is not None
        while self._adds is not None and self._adds.pending():
            _, msg = await self._adds.get()
            if not isinstance(msg, DeviceAdd):
                continue
            try:
                host, port, unit = parse_device_address(msg.address)
                device = await self.feeder.add(host, port, unit)
            except (ValueError, DeviceError) as err:
                reply = DeviceAdded(
                    site=self.site.site.id,
                    address=msg.address,
                    ok=False,
                    reason=str(err),
                    ts=self.plant.time,
                )
            else:
                reply = DeviceAdded(
                    site=self.site.site.id,
                    address=msg.address,
                    ok=True,
                    device=device.id,
                    models=[b.model.id for b in device.models],
                    points=[p.point for p in device.points],
                    ts=self.plant.time,
                )
            await self.bus.publish(device_added_topic(self.site.site.id), reply)


class _PlantClock:
    """The plant's time, so that the feeder stamps values with the instant they belong to."""

    def __init__(self, plant: SimulatedPlant) -> None:
        self._plant = plant

    def now(self) -> datetime:
        return self._plant.time

    async def sleep(self, seconds: float) -> None:
        """The plant's time moves by its own steps; waiting here waits real time."""
        await asyncio.sleep(seconds)


def api_services(meg: LiveMeg, wall: Clock, *, token_ttl_s: float = 900.0) -> ApiServices:
    """What the API serves from, for a live MEG; real time (``wall``) for tokens and logins."""
    identities = Identities(meg.store)
    return ApiServices(
        site=meg.site,
        store=meg.store,
        bus=meg.bus,
        clock=meg.plant_clock,
        wall=wall,
        identities=identities,
        tokens=Tokens(identities.signing_key(), issuer=meg.site.site.id, ttl_s=token_ttl_s),
        audit=AuditLog(meg.store),
        scada=meg.scada,
        status=lambda: meg.status,
        command=meg.command,
        readings=meg.readings,
        trading=meg.trading,
        book=meg.book,
        local_market=meg.local_market,
        figures=meg.figures,
    )


class LiveApi:
    """The API and dashboard of a live MEG, served in its event loop."""

    def __init__(
        self,
        meg: LiveMeg,
        wall: Clock,
        *,
        host: str = "127.0.0.1",
        port: int = 8000,
        certfile: Path | None = None,
        keyfile: Path | None = None,
    ) -> None:
        self.services = api_services(meg, wall)
        self.hub = StreamHub(meg.site.site.id, meg.bus)
        self.app = create_app(self.services, self.hub)
        self.server = ApiServer(
            self.app,
            host=host,
            port=port,
            certfile=certfile,
            keyfile=keyfile,
        )
        self.admin_password: str | None = None

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
