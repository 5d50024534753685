"""The customer energy management service provisioning system's control point (Y.2071 III.3):
the services a premises' plan allows, its subscriptions, subscribe and unsubscribe. A prosumer
manages their own premises' only; every subscribe and unsubscribe is audited with who asked."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

from fastapi import APIRouter, Depends, HTTPException, Path, Request
from pydantic import BaseModel, ConfigDict

from openmeg.api.auth import ERRORS, principal, scope, services
from openmeg.api.context import ApiServices, Scope
from openmeg.core.errors import CommandError, OpenMegError
from openmeg.core.identity import Principal
from openmeg.customer.provisioning_service import ProvisioningService
from openmeg.provider.advertisement import Advertisement

router = APIRouter(prefix="/api/v1/customers/{customer}", responses=ERRORS, tags=["services"])
_ID = r"^[A-Za-z0-9][A-Za-z0-9_\-]{0,63}$"


def _id() -> Any:
    return Path(pattern=_ID)  # one per parameter: FastAPI takes a shared one for one name


class SubscriptionOut(BaseModel):
    model_config = ConfigDict(extra="forbid")
    subscription: str
    service: str
    provider: str
    provider_fingerprint: str
    devices: int
    open: bool


def attach(app: Any, systems: Mapping[str, ProvisioningService]) -> None:
    """Give the API the provisioning system of each premises (by customer id)."""
    app.state.provisioning = dict(systems)


def _system(request: Request, customer: str, sc: Scope) -> ProvisioningService:
    sc.customer(customer)
    found: ProvisioningService | None = getattr(request.app.state, "provisioning", {}).get(customer)
    if found is None:
        raise HTTPException(404, f"no provisioning system runs for {customer}'s premises")
    return found


async def _audit(svc: ApiServices, who: Principal, action: str, target: str) -> None:
    await asyncio.to_thread(
        svc.audit.append,
        ts=svc.clock.now(),
        actor=who.name,
        action=action,
        target=target,
        detail={"via": "api"},
    )


@router.get("/services", response_model=list[Advertisement])
async def services_list(
    request: Request, customer: str = _id(), sc: Scope = Depends(scope)
) -> list[Advertisement]:
    """The advertised services the premises' plan allows."""
    system = _system(request, customer, sc)
    if not system.advertiser:
        raise HTTPException(409, "no advertisement server is configured for these premises")
    try:
        return await system.provisioning.services(system.advertiser)
    except OpenMegError as err:
        raise HTTPException(409, str(err)) from err


@router.get("/subscriptions", response_model=list[SubscriptionOut])
async def services_status(
    request: Request, customer: str = _id(), sc: Scope = Depends(scope)
) -> list[dict[str, object]]:
    """The premises' live subscriptions (never their keys)."""
    return _system(request, customer, sc).provisioning.status()


@router.post("/services/{service}/subscription", response_model=SubscriptionOut)
async def services_subscribe(
    request: Request,
    customer: str = _id(),
    service: str = _id(),
    sc: Scope = Depends(scope),
    who: Principal = Depends(principal),
    svc: ApiServices = Depends(services),
) -> dict[str, object]:
    """Subscribe the premises to ``service`` (mutual TLS, key agreement, the device list)."""
    system = _system(request, customer, sc)
    await _audit(svc, who, "services.subscribe", f"{customer}/{service}")
    try:
        ads = {a.id: a for a in await system.provisioning.services(system.advertiser)}
        if service not in ads:
            raise CommandError(f"the plan allows no service {service!r}: see GET services")
        return (await system.provisioning.subscribe(ads[service])).status()
    except OpenMegError as err:
        raise HTTPException(409, str(err)) from err


@router.delete("/subscriptions/{subscription}", response_model=dict[str, str])
async def services_unsubscribe(
    request: Request,
    customer: str = _id(),
    subscription: str = _id(),
    sc: Scope = Depends(scope),
    who: Principal = Depends(principal),
    svc: ApiServices = Depends(services),
) -> dict[str, str]:
    """End a subscription: the provider told, its key deleted from the keystore and wiped."""
    system = _system(request, customer, sc)
    if subscription not in system.provisioning.subscriptions:
        raise HTTPException(404, f"no subscription {subscription} at {customer}'s premises")
    await _audit(svc, who, "services.unsubscribe", f"{customer}/{subscription}")
    await system.provisioning.unsubscribe(subscription)
    return {"unsubscribed": subscription}
