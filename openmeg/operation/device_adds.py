"""Devices joining the platform: those of the site file and those remembered from earlier runs
are connected at the start (and retried, with an alarm, while they cannot be reached); those
added at run time arrive as ``DeviceAdd`` messages on the bus and are answered, and audited.
An add from the bus needs an operator's signed authorisation for its address, and an address
inside the networks the site allows (``site.device_networks``); a refused one is answered and
audited, and nothing is connected. A connected device joins the asset registry, the write
phase's limits and the control cycle."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Literal

from openmeg.core.addresses import DeviceAddress
from openmeg.core.audit import AuditLog
from openmeg.core.bus import Bus, Subscription, waiting
from openmeg.core.clock import Clock
from openmeg.core.command_auth import CommandAuthError, CommandAuthority
from openmeg.core.device_networks import DeviceNetwork, refusal
from openmeg.core.errors import DeviceError
from openmeg.core.messages import (
    AlarmMessage,
    DeviceAdd,
    DeviceAdded,
    alarm_topic,
    device_add_topic,
    device_added_topic,
    parse_device_address,
)
from openmeg.distribution.discovery import Discovered, unexpected_models
from openmeg.distribution.feeder import DerDataFeeder
from openmeg.distribution.setpoint_writer import SetpointWriter
from openmeg.distribution.writes import Limits
from openmeg.operation.assets import ADDED, Asset, AssetRegistry
from openmeg.operation.controllers.default import BatteryTarget, SelfConsumption
from openmeg.operation.runtime import Runtime


class DeviceAdds:
    """Connects and adopts the devices of one site, through ``feeder``."""

    def __init__(
        self,
        site: str,
        *,
        feeder: DerDataFeeder,
        writer: SetpointWriter,
        runtime: Runtime,
        assets: AssetRegistry,
        audit: AuditLog,
        bus: Bus,
        clock: Clock,
        authority: CommandAuthority,
        wall: Clock,
        networks: Sequence[DeviceNetwork],
        retry_connect_s: float = 30.0,
    ) -> None:
        """``authority`` verifies the adds' authorisations against real time (``wall``);
        ``networks``: where devices may be added."""
        self.site, self.feeder, self.writer, self.runtime = site, feeder, writer, runtime
        self.authority, self.wall, self.networks = authority, wall, tuple(networks)
        self.assets, self.audit, self.bus, self.clock = assets, audit, bus, clock
        self.retry_connect = timedelta(seconds=retry_connect_s)
        self.unconnected: dict[str, tuple[DeviceAddress, str, datetime]] = {}
        """Devices not reached yet: their address, origin and when to try again."""
        self._adds: Subscription | None = None

    async def start(self, addresses: Sequence[DeviceAddress]) -> None:
        """Listen for devices added on the bus; connect the site's and the remembered ones."""
        self._adds = await self.bus.subscribe(device_add_topic(self.site))
        for a in addresses:
            await self.connect(a, "site")
        for a in self.assets.remembered():
            if a.id not in self.feeder.links:
                await self.connect(a, ADDED)

    async def stop(self) -> None:
        if self._adds is not None:
            await self.bus.unsubscribe(self._adds)
            self._adds = None

    async def retry(self, now: datetime) -> None:
        """Try again the devices not reached whose time has come."""
        for address, origin, due in list(self.unconnected.values()):
            if now >= due:
                await self.connect(address, origin)

    async def connect(self, a: DeviceAddress, origin: str) -> None:
        now = self.clock.now()
        try:
            device = await self.feeder.add(a.host, a.port, a.unit, device_id=a.id)
        except DeviceError as err:
            if a.id not in self.unconnected:
                await self._alarm(a.id, "device_unreachable", f"cannot connect: {err}", now, True)
            self.unconnected[a.id] = (a, origin, now + self.retry_connect)
            return
        if self.unconnected.pop(a.id, None) is not None:
            await self._alarm(a.id, "device_unreachable", "connected", now, False)
        surprise = unexpected_models(a, [b.model.id for b in device.models])
        if surprise:
            await self._alarm(a.id, "unexpected_models", surprise, now, True, "warning")
        await self.adopt(device, a, origin)

    async def adopt(self, device: Discovered, address: DeviceAddress, origin: str) -> None:
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

    async def pump(self) -> None:
        """Answer the devices added on the bus since the last call."""
        while items := waiting(self._adds):
            for _, msg in items:
                if isinstance(msg, DeviceAdd):
                    await self.handle(msg)

    async def handle(self, msg: DeviceAdd) -> None:
        """Connect a device added by address, if an operator authorised it and the site allows
        its address; answer on the bus, audited with the operator (or why it was refused)."""
        now = self.clock.now()
        actor, reply = await self._add(msg, now)
        self.audit.append(
            ts=now,
            actor=actor,
            action="device_add" if reply.ok else "device_add_refused",
            target=(reply.device or msg.address)[:256],
            detail={"address": msg.address, "ok": reply.ok, "reason": reply.reason},
        )
        outcome = f"added as {reply.device}" if reply.ok else f"not added: {reply.reason}"
        self.assets.store.add_event(
            ts=now,
            site=self.site,
            kind="device",
            source=actor,
            code="added" if reply.ok else "add_refused",
            text=f"the device at {msg.address}, asked by {actor}: {outcome}"[:2000],
            severity="info" if reply.ok else "warning",
        )
        await self.bus.publish(device_added_topic(self.site), reply)

    async def _add(self, msg: DeviceAdd, now: datetime) -> tuple[str, DeviceAdded]:
        def refused(reason: str) -> DeviceAdded:
            return DeviceAdded(site=self.site, address=msg.address, ok=False, reason=reason, ts=now)

        try:
            who = self.authority.device_add(msg.authorisation, msg.address, self.wall.now())
        except CommandAuthError as err:
            return err.actor, refused(err.reason)
        try:
            host, port, unit = parse_device_address(msg.address)
        except ValueError as err:
            return who.sub, refused(str(err))
        outside = refusal(self.networks, host, port)
        if outside is not None:
            return who.sub, refused(outside)
        try:
            device = await self.feeder.add(host, port, unit)
        except (ValueError, DeviceError) as err:
            return who.sub, refused(str(err))
        address = DeviceAddress(id=device.id, host=host, port=port, unit=unit)
        await self.adopt(device, address, ADDED)
        return who.sub, DeviceAdded(
            site=self.site,
            address=msg.address,
            ok=True,
            device=device.id,
            models=[b.model.id for b in device.models],
            points=[p.point for p in device.points],
            reason=f"monitored only: {device.reason}" if device.reason else "",
            ts=now,
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
            alarm_topic(self.site, source),
            AlarmMessage(
                site=self.site,
                source=source,
                code=code,
                text=text,
                active=active,
                ts=ts,
                severity=severity or ("critical" if active else "info"),
            ),
        )
