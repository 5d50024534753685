"""What the API serves from: the platform's services, handed over by the composition root."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field

from fastapi import HTTPException

from openmeg.core.audit import AuditLog
from openmeg.core.bus import Bus
from openmeg.core.clock import Clock
from openmeg.core.command_auth import CommandAuthority
from openmeg.core.identity import Identities, LoginLimiter, Principal, Tokens
from openmeg.core.messages import CommandResult
from openmeg.core.site import Site
from openmeg.core.store import Store
from openmeg.customer.price_book import PriceBook
from openmeg.customer.trading_desk import TradingSettings
from openmeg.market.local_market import LocalMarket
from openmeg.operation.assets import Asset
from openmeg.operation.mdms.store import MeterReadings
from openmeg.operation.runtime import Status
from openmeg.operation.scada import DerManagementServer

Commander = Callable[[str, str, float, str], Awaitable[CommandResult]]
"""Carries out ``device/name = value`` for a user (through the field or the runtime)."""


@dataclass(kw_only=True)
class ApiServices:
    site: Site
    store: Store
    bus: Bus
    clock: Clock  # the MEG's time: data, commands, events
    wall: Clock  # real time: token expiry, login limits
    identities: Identities
    tokens: Tokens
    audit: AuditLog
    scada: DerManagementServer
    status: Callable[[], Status]
    command: Commander
    readings: MeterReadings
    trading: TradingSettings
    book: PriceBook
    local_market: LocalMarket
    assets: Callable[[], Mapping[str, Asset]] = dict
    """The devices on the wire (those of the site file and those added at run time)."""
    figures: Callable[[], dict[str, float]] = dict
    """The MEG's running figures for /metrics (cycle time, feeder poll time, ingest, ...)."""
    authority: CommandAuthority | None = None
    """Signs operators' authorisations of commands and device adds on the bus."""
    limiter: LoginLimiter = field(default_factory=LoginLimiter)
    live_cache: dict[tuple[object, ...], bytes] = field(default_factory=dict)
    """The live snapshot as sent, per scope, for the control cycle it shows."""


@dataclass(frozen=True, kw_only=True)
class Scope:
    """What one principal may see: every customer, meter and device, or a prosumer's own."""

    everything: bool
    customers: frozenset[str] = frozenset()
    meters: frozenset[str] = frozenset()
    devices: frozenset[str] = frozenset()

    def customer(self, customer: str) -> None:
        if not self.everything and customer not in self.customers:
            raise HTTPException(403, "this is another customer's: you may see your own only")

    def meter(self, meter: str) -> None:
        if not self.everything and meter not in self.meters:
            raise HTTPException(403, "this is another customer's meter: you may see your own")

    def device(self, device: str) -> None:
        if not self.everything and device not in self.devices:
            raise HTTPException(403, "this is another customer's device: you may see your own")

    def sees_device(self, device: str) -> bool:
        return self.everything or device in self.devices


def scope_of(site: Site, who: Principal) -> Scope:
    if who.role != "prosumer":
        return Scope(everything=True)
    c = who.customer or ""
    meters = {m.id for m in site.meters if m.customer == c}
    devices = {d.id for d in site.devices if getattr(d, "owner", None) == c}
    devices |= {d for m in site.meters if m.id in meters for d in m.devices}
    return Scope(
        everything=False,
        customers=frozenset({c}),
        meters=frozenset(meters),
        devices=frozenset(devices | meters),
    )
