"""The III.3 flow over real sockets: advertisement, subscription with mutual TLS 1.3 and key
agreement, discovery, the encrypted device list, a relayed management message, unsubscribe."""

from __future__ import annotations

from pathlib import Path

import pytest

from openmeg.core.building_automation import BasEquipment, BasSystem
from openmeg.core.errors import DeviceError
from openmeg.customer.device_discovery import FoundDevice, scan_bas
from openmeg.customer.provisioning import key_name
from tests.customer.provisioning_world import PLAN, offer, world

BAS = BasSystem(
    id="bas-office",
    premises="office",
    port=47808,
    device_instance=1001,
    equipment=(
        BasEquipment(id="ahu-1", kind="ahu", serial="HB-AHU-0001"),
        BasEquipment(id="light-open", kind="lighting_zone", serial="HB-LZ-0001"),
        BasEquipment(id="security-1", kind="security", serial="HB-SC-0001"),
    ),
)


class FakeBas:
    """A BAS gateway double: point values in a dict, writes recorded."""

    def __init__(self) -> None:
        self.values = {
            "ahu-1.fan_on": 1.0,
            "ahu-1.space_temp_setpoint_c": 23.0,
            "light-open.occupied": 0.0,
            "light-open.level_pct": 80.0,
            "light-open.lights_kw": 7.7,
            "light-open.scene": 3.0,
            "security-1.armed": 1.0,
        }
        self.writes: list[tuple[str, str, float]] = []

    async def read(self, bas: str, names: list[str]) -> dict[str, float]:
        return {n: self.values[n] for n in names if n in self.values}

    async def write(self, bas: str, name: str, value: float) -> None:
        if name not in self.values:
            raise DeviceError(f"{name} does not answer")
        self.writes.append((bas, name, value))
        self.values[name] = value


def discover_with(gateway: FakeBas):  # type: ignore[no-untyped-def]
    async def discover() -> list[FoundDevice]:
        return await scan_bas([BAS], gateway.read)

    return discover


async def test_services_listed_subscribed_relayed_and_unsubscribed(tmp_path: Path) -> None:
    bas = FakeBas()
    async with world(tmp_path, bas, discover_with(bas)) as w:
        ad = await w.provider.register(w.advertiser_at, offer(w.provider.endpoint))
        assert ad.provider == "comfort-optimiser"
        assert ad.provider_fingerprint == w.provider_identity.client_fingerprint
        dear = offer(w.provider.endpoint, id="dear-one", price_per_month=99.0)
        await w.provider.register(w.advertiser_at, dear)
        p = w.service.provisioning
        listed = await p.services(w.advertiser_at)
        assert [a.id for a in listed] == ["comfort-optimiser"]  # 99/month is over the plan

        sub = await p.subscribe(listed[0])
        assert sub.provider_fingerprint == w.provider_identity.server_fingerprint
        assert w.keystore.get(key_name(sub.id)) == sub.key.view().tobytes()
        theirs = w.provider.subscribers[sub.id]
        assert theirs.premises_fingerprint == w.premises.client_fingerprint
        assert sorted((d["kind"], tuple(d["actions"])) for d in theirs.devices) == [
            ("ahu", ("read", "setpoint")),
            ("lighting_zone", ("level", "read")),
        ]  # the security system is not in the plan: never listed

        answers = await w.provider.optimise(sub.id, [0.10, 0.12, 0.31])
        assert [a["ok"] for a in answers] == [True, True]
        assert bas.writes == [
            ("bas-office", "ahu-1.space_temp_setpoint_c", 20.0),
            ("bas-office", "light-open.level_pct", 10.0),
        ]
        assert answers[0]["values"] == {"ahu-1.space_temp_setpoint_c": 20.0}
        assert p.status() == [sub.status()]

        await p.unsubscribe(sub.id)
        assert sub.key.wiped and sub.channel.closed
        assert w.keystore.get(key_name(sub.id)) is None
        assert sub.id not in w.provider.subscribers
        assert p.status() == []
        actions = [a for _, a, _ in w.actions()]
        assert actions == [
            "advertisement.registered",
            "advertisement.registered",
            "provisioning.subscribed",
            "provisioning.relayed",
            "provisioning.relayed",
            "provisioning.relayed",
            "provisioning.unsubscribed",
        ]  # pre-cool, the lighting zone's read, its dimming
        assert w.audit.verify() == []


async def test_a_service_outside_the_plan_is_refused_and_audited(tmp_path: Path) -> None:
    bas = FakeBas()
    async with world(tmp_path, bas, discover_with(bas)) as w:
        ad = await w.provider.register(
            w.advertiser_at, offer(w.provider.endpoint, device_kinds=("security",))
        )
        with pytest.raises(Exception, match="does not allow comfort-optimiser"):
            await w.service.provisioning.subscribe(ad)
        assert w.reasons("provisioning.refused") == ["not in the plan"]
        assert PLAN.allows(ad) is False
