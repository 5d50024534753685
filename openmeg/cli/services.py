"""``openmeg services``: the premises' service provisioning system (Y.2071 III.3): the services
its plan allows, a subscription run in the foreground (relaying the provider's messages until it
ends, then unsubscribed), the subscriptions whose keys the keystore holds, and their removal."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from openmeg.cli.common import SITE, STORE, fail, load_site_or_exit, open_site_store

if TYPE_CHECKING:
    from openmeg.core.keystore import Keystore
    from openmeg.provider.advert_identity import TlsIdentity

services_app = typer.Typer(
    help="Third-party energy management services: list, subscribe, status, unsubscribe.",
    no_args_is_help=True,
)
CERTS = typer.Option(Path("provisioning"), help="folder of the provider CA's and our certificates")
CA = typer.Option("providers", help="the provider CA's name")
NAME = typer.Option("", help="our certificates' name (default: premises-<premises>)")
ADVERTISER = typer.Option(..., help="the advertisement server, HOST:PORT")
PLAN = typer.Option("comfort", help="the premises' plan: monitor, comfort or full")
PREMISES = typer.Option(..., help="the customer whose premises subscribe")


def _cert_name(name: str, premises: str) -> str:
    """Our certificates' name: ``name``, or ``premises-<premises>`` when it is empty."""
    return name or f"premises-{premises}"


def _identity(keys: Keystore, certs: Path, ca: str, name: str) -> TlsIdentity:
    from openmeg.provider.advert_identity import TlsIdentity

    try:
        return TlsIdentity.load(name, certs, ca, keys)
    except FileNotFoundError as err:
        fail(str(err))


def _plan(name: str):  # type: ignore[no-untyped-def]
    from openmeg.provider.advertisement import PLANS

    if name not in PLANS:
        fail(f"no plan {name!r}: use {', '.join(PLANS)}")
    return PLANS[name]


@services_app.command("init")
def services_init(
    premises: str = PREMISES,
    certs: Path = CERTS,
    ca: str = CA,
    name: str = NAME,
    site: str = SITE,
) -> None:
    """Make the provider CA (if it is not there) and our server and client certificates."""
    from openmeg.cli.keys import keystore_or_exit
    from openmeg.protocols.mtls import MtlsError
    from openmeg.protocols.provider_ca import ProviderAuthority
    from openmeg.provider.advert_identity import TlsIdentity

    the_site = load_site_or_exit(site)
    keys = keystore_or_exit(the_site.site.id)
    try:
        if (certs / f"{ca}-ca.pem").exists():
            authority = ProviderAuthority.load(ca, keys, certs)
        else:
            authority = ProviderAuthority.create(ca, keys, certs)
        me = TlsIdentity.issue(authority, _cert_name(name, premises), keys, certs)
    except (MtlsError, FileExistsError) as err:
        fail(str(err))
    print(f"{me.name}: client {me.client_fingerprint}")
    print(f"certificates in {certs}, keys in the keystore {keys.path}")


@services_app.command("list")
def services_list(
    premises: str = PREMISES,
    advertiser: str = ADVERTISER,
    plan: str = PLAN,
    certs: Path = CERTS,
    ca: str = CA,
    name: str = NAME,
    site: str = SITE,
) -> None:
    """The advertised services the plan allows (JSON, one a line)."""
    from openmeg.cli.keys import keystore_or_exit
    from openmeg.customer.provisioning import list_services
    from openmeg.provider.advert_http import HttpError

    the_site = load_site_or_exit(site)
    me = _identity(keystore_or_exit(the_site.site.id), certs, ca, _cert_name(name, premises))
    try:
        ads = asyncio.run(list_services(me, advertiser, _plan(plan)))
    except (HttpError, ValueError) as err:
        fail(str(err))
    for a in ads:
        print(json.dumps(a.model_dump(mode="json"), sort_keys=True))


@services_app.command("subscribe")
def services_subscribe(
    service: str = typer.Argument(..., help="the service's id"),
    premises: str = PREMISES,
    advertiser: str = ADVERTISER,
    plan: str = PLAN,
    seconds: float = typer.Option(
        0.0, "--for", help="relay this long, then unsubscribe (0: until Ctrl-C)"
    ),
    mdns: bool = typer.Option(True, help="also find devices by DNS-SD over mDNS"),
    certs: Path = CERTS,
    ca: str = CA,
    name: str = NAME,
    site: str = SITE,
    store: str = STORE,
) -> None:
    """Subscribe and relay the provider's management messages to the premises' devices; on
    the end (``--for`` or Ctrl-C) unsubscribe, delete the key from the keystore and wipe it."""
    from openmeg.cli.keys import audit_or_exit, keystore_or_exit
    from openmeg.customer.provisioning_service import run_subscription

    if not (seconds >= 0 and seconds < 1e7):
        fail("--for is 0 (until Ctrl-C) or a number of seconds")
    the_site, db = open_site_store(site, store)
    keys = keystore_or_exit(the_site.site.id)
    me = _identity(keys, certs, ca, _cert_name(name, premises))
    try:
        code = asyncio.run(
            run_subscription(
                site=the_site,
                premises=premises,
                identity=me,
                plan=_plan(plan),
                keystore=keys,
                audit=audit_or_exit(the_site.site.id, db),
                advertiser=advertiser,
                service=service,
                seconds=seconds,
                mdns=mdns,
            )
        )
    finally:
        db.close()
    if code:
        raise typer.Exit(code)


@services_app.command("status")
def services_status(site: str = SITE) -> None:
    """The subscriptions whose message keys the keystore holds (a live one, or one whose
    session ended without unsubscribing)."""
    from openmeg.cli.keys import keystore_or_exit
    from openmeg.customer.provisioning import held_subscriptions

    the_site = load_site_or_exit(site)
    held = held_subscriptions(keystore_or_exit(the_site.site.id))
    for sid in held:
        print(sid)
    if not held:
        print("no subscriptions")


@services_app.command("unsubscribe")
def services_unsubscribe(
    subscription: str = typer.Argument(..., help="the subscription's id (see status)"),
    site: str = SITE,
    store: str = STORE,
) -> None:
    """Delete a subscription's message key from the keystore (audited)."""
    from openmeg.cli.keys import audit_or_exit, keystore_or_exit
    from openmeg.core.clock import WallClock
    from openmeg.customer.provisioning import held_subscriptions, key_name

    the_site, db = open_site_store(site, store)
    try:
        keys = keystore_or_exit(the_site.site.id)
        if subscription not in held_subscriptions(keys):
            fail(f"no subscription {subscription}: see openmeg services status")
        keys.delete(key_name(subscription))
        audit_or_exit(the_site.site.id, db).append(
            ts=WallClock().now(),
            actor="cli",
            action="provisioning.unsubscribed",
            target=subscription,
            detail={"via": "cli", "provider_told": False},
        )
    finally:
        db.close()
    print(f"{subscription}: its key is deleted from the keystore")
