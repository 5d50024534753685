"""Composition root: wires site, clock, bus, store, the DER data feeder, the control cycle and
the services of the platform. The field (simulated or real) is reached only over the wire."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from pathlib import Path
from typing import Literal

import pandas as pd

from openmeg.api.app import create_app
from openmeg.api.context import ApiServices
from openmeg.api.stream import StreamHub
from openmeg.core.addresses import DeviceAddress
from openmeg.core.audit import AuditLog
from openmeg.core.bus import Bus
from openmeg.core.bus import Subscription as BusSubscription
from openmeg.core.clock import Clock
from openmeg.core.errors import DeviceError, OpenMegError
from openmeg.core.identity import Identities, Tokens
from openmeg.core.messages import (
    AlarmMessage,
    CommandMessage,
    CommandResult,
    DeviceAdd,
    DeviceAdded,
    PointUpdate,
    alarm_topic,
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
from openmeg.der.ratings import CHP, PV, Battery, FuelCell, HeatStorage, Wind
from openmeg.der.wind_curves import library_curve
from openmeg.distribution.discovery import Discovered, unexpected_models
from openmeg.distribution.fault_restoration import FaultRestoration
from openmeg.distribution.feeder import DerDataFeeder, Subscription
from openmeg.distribution.head_end import DEVICE_REGISTERS, HeadEnd
from openmeg.distribution.setpoint_writer import SetpointWriter
from openmeg.distribution.writes import Limits
from openmeg.operation.assets import ADDED, Asset, AssetRegistry
from openmeg.operation.controllers.default import (
    BatteryTarget,
    ChpUnit,
    HeatLedChp,
    SelfConsumption,
)
from openmeg.operation.cycle import ControlCycle, Controller
from openmeg.operation.historian import Historian
from openmeg.operation.process_image import ImageKeeper
from openmeg.operation.runtime import Runtime, Status
from openmeg.operation.scada import DerManagementServer, site_limits
from openmeg.protocols.http_server import HttpServer
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
    into interval readings for the MDMS; the historian archives what travels on the bus.
    """

    def __init__(
        self,
        site: Site,
        *,
        clock: Clock,
        bus: Bus,
        store: Store,
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
    ) -> None:
        """``addresses``: where the devices answer (host, port, unit id), each under its id.

        Market prices: from a price server at ``price_url`` (HTTP), or else published on the
        bus by an embedded market from ``market_prices`` (``interval_start, buy, sell``;
        default: seeded synthetic prices for a year from the start).

        ``revert_s``: the revert timeout written with every setpoint (a device that hears
        nothing for that long reverts by itself); ``manual_hold_s``: how long an operator's
        command on a point keeps the controllers off it."""
        self.site, self.clock, self.bus, self.step_s = site, clock, bus, step_s
        self.store = store
        self.addresses = list(addresses)
        self.economics = ProsumerEconomics(
            site,
            clock=clock,
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
        self.feeder = DerDataFeeder(
            site.site.id,
            bus,
            clock,
            poll_period_s=step_s,
            snapshot_every_s=snapshot_every_s,
            domains=site.domains(),
        )
        self.writer = SetpointWriter(
            site.site.id, self.feeder, bus, limits=setpoint_limits(site), revert_s=revert_s
        )
        self.images = ImageKeeper(site.site.id, bus, local=lambda d: d in self.feeder.links)
        self.feeder.listeners.append(self.images.take)
        self.restoration = FaultRestoration(
            site, feeder=self.feeder, images=self.images, clock=clock, bus=bus, store=store
        )
        self.runtime = Runtime(
            site.site.id,
            self.images,
            ControlCycle(default_controllers(site, self.desk)),
            self._write_phase,
            clock=clock,
            bus=bus,
            store=store,
            batteries=tuple(b.id for b in site.devices_of("battery")),
        )
        self.persist_every = max(1, round(persist_every_s / step_s))
        self.historian = Historian(site.site.id, bus, store, sample_every_s=persist_every_s)
        self.scada = DerManagementServer(
            site.site.id,
            bus,
            store,
            limits=site_limits(site),
            commander=self._operator_write,
        )
        self.assets = AssetRegistry(site.site.id, store)
        self.audit = AuditLog(store)
        self.manual_hold = timedelta(seconds=manual_hold_s)
        self.retry_connect = timedelta(seconds=retry_connect_s)
        self._unconnected: dict[str, tuple[DeviceAddress, str, datetime]] = {}
        self._adds: BusSubscription | None = None
        self._commands: BusSubscription | None = None
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
    def status(self) -> Status:
        return self.runtime.status

    async def start(self) -> None:
        """Listen for commands, start the services, connect the feeder to every device."""
        site = self.site.site.id
        await self.images.start()
        await self.economics.start()
        await self.historian.start()
        await self.scada.start()
        self.feeder.subscribe(Subscription(device="*", point="*", interval_s=self.step_s))
        self._adds = await self.bus.subscribe(device_add_topic(site))
        self._commands = await self.bus.subscribe(command_topic(site, "+", "+"))
        self._registers = [
            await self.bus.subscribe(f"meg/{site}/{pattern}")
            for pattern in ("customer/+/+", "+/+/energy_kwh", "+/+/energy_in_kwh")
        ]
        for a in self.addresses:
            await self._connect(a, "site")
        for a in self.assets.remembered():
            if a.id not in self.feeder.links:
                await self._connect(a, ADDED)

    async def _connect(self, a: DeviceAddress, origin: str) -> None:
        now = self.clock.now()
        try:
            device = await self.feeder.add(a.host, a.port, a.unit, device_id=a.id)
        except DeviceError as err:
            if a.id not in self._unconnected:
                await self._alarm(a.id, "device_unreachable", f"cannot connect: {err}", now, True)
            self._unconnected[a.id] = (a, origin, now + self.retry_connect)
            return
        if self._unconnected.pop(a.id, None) is not None:
            await self._alarm(a.id, "device_unreachable", "connected", now, False)
        surprise = unexpected_models(a, [b.model.id for b in device.models])
        if surprise:
            await self._alarm(a.id, "unexpected_models", surprise, now, True, "warning")
        await self._adopt(device, a, origin)

    async def _adopt(self, device: Discovered, address: DeviceAddress, origin: str) -> None:
        """A connected device joins the platform: the asset registry (and, added at run time,
        the store), the write phase's limits from its ratings, and the control cycle by its
        kind (a battery serves the MEG's net demand at the PCC beside the others there)."""
        now = self.clock.now()
        asset = Asset(
            address=address,
            family=device.family,
            models=tuple(b.model.id for b in device.models),
            origin=origin,
            manufacturer=device.manufacturer,
            model_name=device.model_name,
            monitored_only=device.reason,
        )
        self.assets.record(asset, now)
        if device.reason is not None:
            await self._alarm(
                device.id, "monitored_only", f"monitored only: {device.reason}", now, True
            )
            return
        if origin != ADDED or device.id in self.writer.limits:
            return
        r = device.ratings
        if device.family == "storage" and r.w_charge_max_w and r.w_discharge_max_w:
            self.writer.limits[device.id] = Limits(
                p_min_kw=-r.w_charge_max_w / 1000.0, p_max_kw=r.w_discharge_max_w / 1000.0
            )
            for c in self.runtime.cycle.controllers:
                if isinstance(c, SelfConsumption):
                    c.targets.append(
                        BatteryTarget(
                            battery=device.id,
                            meter="pcc",
                            rating_kw=max(r.w_charge_max_w, r.w_discharge_max_w) / 1000.0,
                        )
                    )
                    self.runtime.batteries += (device.id,)
        elif (r.w_max_w or r.w_rating_w) and device.family == "inverter":
            self.writer.limits[device.id] = Limits(
                p_min_kw=0.0, p_max_kw=float(r.w_max_w or r.w_rating_w or 0.0) / 1000.0
            )

    async def _alarm(
        self,
        source: str,
        code: str,
        text: str,
        ts: datetime,
        active: bool,
        severity: Literal["info", "warning", "critical"] | None = None,
    ) -> None:
        await self.bus.publish(
            alarm_topic(self.site.site.id, source),
            AlarmMessage(
                site=self.site.site.id,
                source=source,
                code=code,
                text=text,
                active=active,
                ts=ts,
                severity=severity or ("critical" if active else "info"),
            ),
        )

    async def step(self) -> None:
        """One cycle: poll the field, control, write, meter, archive."""
        now = self.clock.now()
        await self.economics.before_cycle()
        await self._handle_device_adds()
        for address, origin, due in list(self._unconnected.values()):
            if now >= due:
                await self._connect(address, origin)
        t0 = time.perf_counter()
        await self.feeder.poll()
        self.feeder_poll_ms = (time.perf_counter() - t0) * 1000.0
        await self.restoration.step()
        await self._handle_bus_commands()
        await self.runtime.step()
        await self.prices.update(now)
        await self._collect_readings()
        await self.historian.pump()
        await self.scada.pump()
        if self.status.cycles % self.persist_every == 0:
            self.historian.flush()

    async def _write_phase(self, setpoints: Mapping[str, float], now: datetime) -> None:
        """The controllers' setpoints for the devices on the wire (the writer leaves those an
        operator holds by hand alone)."""
        wanted = {k: v for k, v in setpoints.items() if k.split("/")[0] in self.feeder.links}
        await self.writer.write(wanted, now)

    async def _operator_write(self, device: str, point: str, value: float) -> CommandResult:
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

    async def run(self, stop: asyncio.Event, *, max_cycles: int | None = None) -> None:
        """Cycle every ``step_s`` of the clock until ``stop`` is set or ``max_cycles`` ran."""
        while not stop.is_set() and (max_cycles is None or self.status.cycles < max_cycles):
            await self.step()
            await self.clock.sleep(self.step_s)

    async def stop(self) -> None:
        """Store the latest points, close the wire."""
        await self.historian.stop()
        await self.scada.stop()
        self.feeder.close()
        await self.economics.stop()
        await self.images.stop()
        for sub in (self._adds, self._commands, *self._registers):
            if sub is not None:
                await self.bus.unsubscribe(sub)
        self._adds, self._commands, self._registers = None, None, []

    async def _collect_readings(self) -> None:
        """The head-end turns meter registers into 15-minute readings, and the devices' own
        meters into theirs (for their revenue); the MDMS stores them."""
        for sub in self._registers:
            while sub.pending():
                _, msg = await sub.get()
                if isinstance(msg, PointUpdate):
                    self.head_end.observe(msg)
                    self.device_meters.observe(msg)
        now = self.clock.now()
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
        """Carry out an operator's command through the field; the device's answer."""
        return await self.scada.command(device, name, value, user=user, ts=self.clock.now())

    async def _handle_bus_commands(self) -> None:
        site = self.site.site.id
        while self._commands is not None and self._commands.pending():
            topic, msg = await self._commands.get()
            _, _, _, device, name = topic.split("/")
            if not isinstance(msg, CommandMessage) or (msg.device, msg.name) != (device, name):
                await self.bus.publish(
                    command_result_topic(site, device, name),
                    CommandResult(
                        site=site,
                        device=device,
                        name=name,
                        value=0.0,
                        accepted=False,
                        reason="a command message must name the device and point of its topic",
                        ts=self.clock.now(),
                    ),
                )
                continue
            await self.command(device, name, msg.value, msg.user)

    def figures(self) -> dict[str, float]:
        """Running figures for the metrics."""
        return {
            "cycle_time_ms": self.status.cycle_ms,
            "cycles": float(self.status.cycles),
            "feeder_poll_ms": self.feeder_poll_ms,
            "feeder_devices": float(len(self.feeder.links)),
            "readings_ingested": float(self.readings_ingested),
            "alarms_active": float(len(self.scada.alarms(active_only=True))),
            "commands": float(self.status.commands),
            "setpoint_writes": float(self.writer.writes_total),
        }

    async def _handle_device_adds(self) -> None:
        while self._adds is not None and self._adds.pending():
            _, msg = await self._adds.get()
            if not isinstance(msg, DeviceAdd):
                continue
            now = self.clock.now()
            try:
                host, port, unit = parse_device_address(msg.address)
                device = await self.feeder.add(host, port, unit)
            except (ValueError, DeviceError) as err:
                reply = DeviceAdded(
                    site=self.site.site.id,
                    address=msg.address,
                    ok=False,
                    reason=str(err),
                    ts=now,
                )
            else:
                address = DeviceAddress(id=device.id, host=host, port=port, unit=unit)
                await self._adopt(device, address, ADDED)
                reply = DeviceAdded(
                    site=self.site.site.id,
                    address=msg.address,
                    ok=True,
                    device=device.id,
                    models=[b.model.id for b in device.models],
                    points=[p.point for p in device.points],
                    reason=f"monitored only: {device.reason}" if device.reason else "",
                    ts=now,
                )
            self.audit.append(
                ts=now,
                actor="bus",
                action="device_add",
                target=reply.device or msg.address,
                detail={"address": msg.address, "ok": reply.ok, "reason": reply.reason},
            )
            await self.bus.publish(device_added_topic(self.site.site.id), reply)


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
        assets=lambda: meg.assets.assets,
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
        self.server = HttpServer(
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
