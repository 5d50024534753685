"""The advertisement server: providers known by their certificate register services, the list
is published, and a plan picks what a premises may subscribe to; bad offers are refused and
audited."""

from __future__ import annotations

import math
import re
from pathlib import Path

import pytest
from pydantic import ValidationError

from openmeg.provider.advert_http import MtlsClient
from openmeg.provider.advert_identity import TlsIdentity
from openmeg.provider.advertisement import PLANS, Advertisement, Plan, ServiceOffer, allowed
from tests.customer.provisioning_world import offer, world
from tests.customer.test_provisioning import FakeBas, discover_with


def _ad(**changes: object) -> Advertisement:
    base = offer("127.0.0.1:9").model_dump() | {"provider": "p", "provider_fingerprint": "a" * 64}
    return Advertisement.model_validate(base | changes)


def test_a_plan_allows_a_service_whose_kinds_actions_and_price_it_covers() -> None:
    plan = Plan(
        name="t", device_kinds=("ahu",), actions=("read", "setpoint"), max_price_per_month=10
    )
    ok = _ad(id="a", device_kinds=("ahu",), actions=("setpoint",), price_per_month=10.0)
    dear = _ad(id="b", device_kinds=("ahu",), actions=("read",), price_per_month=10.01)
    lights = _ad(
        id="c", device_kinds=("ahu", "lighting_zone"), actions=("read",), price_per_month=1.0
    )
    dims = _ad(id="d", device_kinds=("ahu",), actions=("level",), price_per_month=1.0)
    assert [a.id for a in allowed([ok, dear, lights, dims], plan)] == ["a"]
    assert PLANS["monitor"].allows(ok) is False  # setpoint is more than monitoring
    assert PLANS["comfort"].allows(ok) is True


@pytest.mark.parametrize(
    ("changes", "why"),
    [
        ({"device_kinds": ("toaster",)}, "unknown device kinds ['toaster']"),
        ({"actions": ("format_disk",)}, "unknown actions ['format_disk']"),
        ({"price_per_month": math.inf}, "less than or equal to 1000000"),
        ({"price_per_month": math.nan}, "less than or equal to 1000000"),
        ({"price_per_month": -1.0}, "greater than or equal to 0"),
        ({"id": "Bad Id"}, "pattern"),
        ({"endpoint": "no-port"}, "pattern"),
    ],
)
def test_a_malformed_offer_is_refused_with_what_is_wrong(
    changes: dict[str, object], why: str
) -> None:
    with pytest.raises(ValidationError, match=re.escape(why)):
        ServiceOffer.model_validate(offer("127.0.0.1:9").model_dump() | changes)


async def test_only_registered_providers_register_and_none_takes_anothers_service(
    tmp_path: Path,
) -> None:
    bas = FakeBas()
    async with world(tmp_path, bas, discover_with(bas)) as w:
        ad = await w.provider.register(w.advertiser_at, offer(w.provider.endpoint))
        assert ad.provider_fingerprint == w.provider_identity.client_fingerprint
        intruder = TlsIdentity.issue(w.authority, "comfort-optimiser-2", w.keystore)
        host, _, port = w.advertiser_at.rpartition(":")

        async def post(identity: TlsIdentity, body: object) -> tuple[int, object]:
            client = MtlsClient(host, int(port), identity.client_context())
            try:
                return await client.request("POST", "/services", body)
            finally:
                await client.close()

        status, body = await post(intruder, offer(w.provider.endpoint).model_dump(mode="json"))
        assert status == 403 and "not a registered provider's" in str(body)
        status, body = await post(w.provider_identity, {"id": "x", "price_per_month": "free"})
        assert status == 400 and "not a service offer" in str(body)
        w.board.trusted = lambda fp: True  # both are providers now: still, one owns its service
        status, body = await post(intruder, offer(w.provider.endpoint).model_dump(mode="json"))
        assert status == 409 and "belongs to another provider" in str(body)
        assert [a.provider for a in w.board.listing()] == ["comfort-optimiser"]
        refused = [r for r in w.audit.records() if r.action == "advertisement.refused"]
        assert [r.actor for r in refused] == [
            "comfort-optimiser-2",
            "comfort-optimiser",
            "comfort-optimiser-2",
        ]
