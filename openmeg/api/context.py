"""What the API serves from: the platform's services, handed over by the composition root."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Literal, Protocol

from fastapi import HTTPException

from openmeg.api.body_limit import MAX_BODY
from openmeg.api.client_address import Network
from openmeg.api.field_control import FieldControl
from openmeg.api.login_limit import LoginLimiter
from openmeg.core.audit import AuditLog
from openmeg.core.bus import Bus
from openmeg.core.clock import Clock
from openmeg.core.command_auth import CommandAuthority
from openmeg.core.identity import Identities, Principal, Tokens
from openmeg.core.messages import CommandResult
from openmeg.core.sessions import Sessions
from openmeg.core.site import Site
from openmeg.core.store import Store
from openmeg.customer.bems import Bems
from openmeg.customer.price_book import PriceBook
from openmeg.customer.trading_desk import TradingSettings
from openmeg.market.local_market import LocalMarket
from openmeg.operation.assets import Asset
from openmeg.operation.mdms.store import MeterReadings
from openmeg.operation.runtime import Status
from openmeg.operation.scada import DerManagementServer


class Commander(Protocol):
    """Carries out ``device/name = value`` for a user (through the field or the runtime),
    with the user's reason for it if given."""

    def __call__(
        self, device: str, name: str, value: float, user: str, reason: str = ""
    ) -> Awaitable[CommandResult]: ...


@dataclass(kw_only=True)
class ApiServices:
    site: Site
    store: Store
    bus: Bus
    clock: Clock  # the MEG's time: data, commands, events
    wall: Clock  # real time: token expiry, login limits
    identities: Identities
    tokens: Tokens
    sessions: Sessions
    """Refresh tokens: sessions that last while in use."""
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
    trusted_proxies: tuple[Network, ...] = ()
    """Reverse proxies whose ``X-Forwarded-For`` is believed (none by default)."""
    max_body_bytes: int = MAX_BODY
    """The largest request body taken; a larger one is refused with 413 before it is read."""
    field_kind: Literal["simulated", "site"] = "site"
    """Which field the MEG operates: openmeg's simulated one, or the site's own devices."""
    field_control: FieldControl | None = None
    """The simulated field's control interface (the simulator panel's), if there is one."""
    bems: Mapping[str, Bems] = field(default_factory=dict)
    """The energy management of each premises with a BAS, by the BAS's id."""
    live_cache: dict[tuple[object, ...], bytes] = field(default_factory=dict)
    """The live snapshot as sent, per scope, for the control cycle it shows."""


@dataclass(frozen=True, kw_only=True)
class Scope:
    """What one principal may see: every customer, meter and device, or a prosumer's own; and
    ``private``, the devices whose points the role may not see although it sees everything else
    (the customers' meters, for the service provider: the role matrix's privacy rule)."""

    everything: bool
    customers: frozenset[str] = frozenset()
    meters: frozenset[str] = frozenset()
    devices: frozenset[str] = frozenset()
    private: frozenset[str] = frozenset()

    def customer(self, customer: str) -> None:
        if not self.everything and customer not in self.customers:
            raise HTTPException(403, "this is another customer's: you may see your own only")

    def meter(self, meter: str) -> None:
        if not self.everything and meter not in self.meters:
            raise HTTPException(403, "this is another customer's meter: you may see your own")

    def device(self, device: str) -> None:
        if device in self.private:
            raise HTTPException(
                403, f"{device} is a customer's meter: its data is the customer's (privacy)"
            )
        if not self.everything and device not in self.devices:
            raise HTTPException(403, "this is another customer's device: you may see your own")

    def sees_device(self, device: str) -> bool:
        return device not in self.private and (self.everything or device in self.devices)

    def key(self) -> tuple[object, ...]:
        """Scopes with the same key see the same data."""
        return (self.everything, self.devices, self.private)


def scope_of(site: Site, who: Principal, added_meters: Iterable[str] = ()) -> Scope:
    """What ``who`` may see of ``site`` (and of the meters added at run time)."""
    if who.role == "service_provider":
        meters = {m.id for m in site.meters} | set(added_meters)
        return Scope(everything=True, private=frozenset(meters))
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


def scope_for(svc: ApiServices, who: Principal) -> Scope:
    """``scope_of`` for the live MEG, its run-time meters included."""
    added = (a.id for a in svc.assets().values() if a.family == "meter")
    return scope_of(svc.site, who, added)
