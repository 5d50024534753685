"""The service advertisement server (Y.2071 III.3 step 1): third-party providers, each known by
its certificate, register customer energy management services; the server publishes the list,
and a premises' provisioning system shows its user the services its plan allows."""

from __future__ import annotations

import asyncio
import math
from collections.abc import Callable
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from openmeg.core.audit import AuditLog
from openmeg.core.building_automation import POINTS
from openmeg.provider.advert_http import Handler, HttpError, Request

DEVICE_KINDS = (*POINTS, "pv", "battery")
"""The kinds of device a service may ask for: the BAS equipment kinds and SunSpec DER."""
ACTIONS = ("read", "setpoint", "fan_speed", "mode", "level", "scene")
"""What a service may do to a device (``customer.provisioning_relay`` maps each to points)."""
_ID = r"^[a-z0-9][a-z0-9\-]{0,63}$"


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", strict=True)


class ServiceOffer(_Frozen):
    """What a provider registers: a service, what it does, what it needs and its price."""

    id: str = Field(pattern=_ID, description="the service's id")
    name: str = Field(min_length=1, max_length=120)
    description: str = Field(max_length=2000, description="what it does")
    device_kinds: tuple[str, ...] = Field(min_length=1, description="the device kinds it needs")
    actions: tuple[str, ...] = Field(min_length=1, description="what it does to them")
    price_per_month: float = Field(ge=0, le=1e6, description="its price [currency/month]")
    endpoint: str = Field(pattern=r"^[A-Za-z0-9.\-]+:[0-9]{1,5}$", description="host:port")

    @field_validator("device_kinds")
    @classmethod
    def _kinds(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        bad = sorted(set(v) - set(DEVICE_KINDS))
        if bad:
            raise ValueError(f"unknown device kinds {bad}: use {', '.join(DEVICE_KINDS)}")
        return v

    @field_validator("actions")
    @classmethod
    def _actions(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        bad = sorted(set(v) - set(ACTIONS))
        if bad:
            raise ValueError(f"unknown actions {bad}: use {', '.join(ACTIONS)}")
        return v

    @field_validator("price_per_month")
    @classmethod
    def _finite(cls, v: float) -> float:
        if not math.isfinite(v):
            raise ValueError("the price must be a finite number")
        return v


class Advertisement(ServiceOffer):
    """A published service: the offer and the provider whose certificate registered it."""

    provider: str = Field(description="the provider's certificate's common name")
    provider_fingerprint: str = Field(pattern=r"^[0-9a-f]{64}$")


class Plan(_Frozen):
    """A premises' subscription plan: the device kinds and actions it lets services use."""

    name: str
    device_kinds: tuple[str, ...]
    actions: tuple[str, ...]
    max_price_per_month: float = Field(ge=0)

    def allows(self, ad: ServiceOffer) -> bool:
        """True if every device kind and action ``ad`` needs is in the plan, at its price."""
        return (
            set(ad.device_kinds) <= set(self.device_kinds)
            and set(ad.actions) <= set(self.actions)
            and ad.price_per_month <= self.max_price_per_month
        )


def allowed(ads: list[Advertisement], plan: Plan) -> list[Advertisement]:
    """The advertisements ``plan`` allows, in their order."""
    return [a for a in ads if plan.allows(a)]


class AdvertisementBoard:
    """The registered services, each owned by the provider certificate that registered it."""

    def __init__(
        self, audit: AuditLog, clock: Callable[[], datetime], trusted: Callable[[str], bool]
    ) -> None:
        self.audit, self.clock, self.trusted = audit, clock, trusted
        self._ads: dict[str, Advertisement] = {}

    def listing(self) -> list[Advertisement]:
        """Every advertisement, by service id."""
        return [self._ads[k] for k in sorted(self._ads)]

    async def _append(self, **record: Any) -> None:
        await asyncio.to_thread(self.audit.append, **record)  # the store off the event loop

    async def _refuse(self, req: Request, why: str, status: int) -> HttpError:
        await self._append(
            ts=self.clock(),
            actor=req.peer_name or req.peer_fingerprint,
            action="advertisement.refused",
            target=req.path,
            detail={"reason": why, "fingerprint": req.peer_fingerprint},
        )
        return HttpError(why, status=status)

    async def register(self, req: Request) -> tuple[int, Any]:
        """POST /services: a provider certificate registers (or replaces) its service."""
        if not self.trusted(req.peer_fingerprint):
            raise await self._refuse(req, "this certificate is not a registered provider's", 403)
        try:
            offer = ServiceOffer.model_validate_json(req.body)
        except ValidationError as err:
            raise await self._refuse(req, f"not a service offer: {err}", 400) from err
        held = self._ads.get(offer.id)
        if held is not None and held.provider_fingerprint != req.peer_fingerprint:
            raise await self._refuse(
                req, f"the service {offer.id} belongs to another provider", 409
            )
        ad = Advertisement(
            **offer.model_dump(), provider=req.peer_name, provider_fingerprint=req.peer_fingerprint
        )
        self._ads[ad.id] = ad
        await self._append(
            ts=self.clock(),
            actor=req.peer_name,
            action="advertisement.registered",
            target=ad.id,
            detail={"fingerprint": req.peer_fingerprint, "price_per_month": ad.price_per_month},
        )
        return 200, ad.model_dump(mode="json")

    async def publish(self, req: Request) -> tuple[int, Any]:
        """GET /services: the list, to any client the site's CA certified."""
        return 200, [a.model_dump(mode="json") for a in self.listing()]

    async def tls_refused(self, peer: str, reason: str) -> None:
        """Audit a refused handshake."""
        await self._append(
            ts=self.clock(),
            actor=peer,
            action="advertisement.refused",
            target="tls",
            detail={"reason": reason},
        )

    def routes(self) -> dict[tuple[str, str], Handler]:
        """The server's routes."""
        return {("POST", "/services"): self.register, ("GET", "/services"): self.publish}


PLANS: dict[str, Plan] = {
    "monitor": Plan(
        name="monitor", device_kinds=DEVICE_KINDS, actions=("read",), max_price_per_month=20.0
    ),
    "comfort": Plan(
        name="comfort",
        device_kinds=("ahu", "heat_pump", "lighting_zone"),
        actions=("read", "setpoint", "level", "scene"),
        max_price_per_month=50.0,
    ),
    "full": Plan(
        name="full",
        device_kinds=DEVICE_KINDS,
        actions=tuple(a for a in ACTIONS),
        max_price_per_month=500.0,
    ),
}
"""The subscription plans a premises may hold, by name."""
