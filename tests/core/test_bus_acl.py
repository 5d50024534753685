"""The bus components' topics, and the in-process bus holding each component to them."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from openmeg.core.bus import InProcessBus
from openmeg.core.bus_acl import COMPONENTS, PLATFORM, may_publish, user_name
from openmeg.core.errors import BusError
from openmeg.core.messages import MarketPrices, PointUpdate
from openmeg.core.scoped_bus import Buses, ScopedBus

T0 = datetime(2026, 1, 1, tzinfo=UTC)


@pytest.mark.parametrize(
    ("component", "topic", "allowed"),
    [
        ("feeder", "meg/S/der/pv1/p_kw", True),
        ("feeder", "meg/S/customer/m1/import_kwh", True),
        ("feeder", "meg/S/distribution/pcc/switch_state", True),
        ("feeder", "meg/S/customer/m1/readings", False),
        ("feeder", "meg/S/customer/m1/price", False),
        ("feeder", "meg/S/distribution/mode", False),
        ("feeder", "meg/S/command/pcc/switch_command", False),
        ("head-end", "meg/S/customer/m1/readings", True),
        ("head-end", "meg/S/customer/m1/import_kwh", False),
        ("mdms", "meg/S/mdms/m1/readings", True),
        ("market", "meg/S/market/prices", True),
        ("market", "meg/S/command/pcc/switch_command", False),
        ("operation", "meg/S/distribution/mode", True),
        ("operation", "meg/S/operation/cycle/duration_ms", True),
        ("operation", "meg/S/command-result/pcc/switch_command", True),
        ("operation", "meg/S/market/prices", False),
        ("provider", "meg/S/customer/c1/price", True),
        ("provider", "meg/S/customer/c1/peak", True),
        ("provider", "meg/S/customer/c1/trading", False),
        ("customer", "meg/S/customer/c1/trading", True),
        ("operator", "meg/S/command/pcc/switch_command", True),
        ("operator", "meg/S/operation/devices/add", True),
        ("operator", "meg/S/market/prices", False),
        ("operator", "meg/S/operation/alarms/pcc", False),
        ("operator", "meg/S/customer/m1/import_kwh", False),
        ("operator", "meg/T/command/pcc/switch_command", False),
    ],
)
def test_each_component_publishes_only_its_topics(
    component: str, topic: str, allowed: bool
) -> None:
    assert may_publish("S", component, topic) is allowed


def test_every_platform_component_may_alarm_and_the_operator_may_not() -> None:
    assert len(PLATFORM) == len(COMPONENTS) - 1 == 7
    for name in PLATFORM:
        assert may_publish("S", name, "meg/S/operation/alarms/pv1"), name
    assert user_name("S", "head-end") == "openmeg-S-head-end"


async def test_the_scoped_bus_refuses_a_publish_outside_the_components_topics() -> None:
    inner = InProcessBus()
    market = ScopedBus(inner, site="S", name="market")
    sub = await inner.subscribe("meg/S/#")
    prices = MarketPrices(site="S", ts=T0, changes=[])
    await market.publish("meg/S/market/prices", prices)
    point = PointUpdate(site="S", device="pcc", name="switch_command", value=0, unit="", ts=T0)
    with pytest.raises(BusError, match="openmeg-S-market may not publish on 'meg/S/command/pcc"):
        await market.publish("meg/S/command/pcc/switch_command", point)
    assert market.refused == 1
    assert await sub.get(1) == ("meg/S/market/prices", prices)
    assert sub.pending() == 0
    await market.close()  # a shared bus stays open
    await inner.publish("meg/S/market/prices", prices)
    assert sub.pending() == 1
    await inner.close()


async def test_buses_give_each_component_its_scope_and_name_the_unknown() -> None:
    inner = InProcessBus()
    buses = Buses.shared("S", inner)
    with pytest.raises(BusError, match="no bus for component 'operator'"):
        buses.of("operator")
    with pytest.raises(BusError, match="may not publish"):
        await buses.of("head-end").publish(
            "meg/S/customer/m1/import_kwh",
            PointUpdate(site="S", device="m1", name="import_kwh", value=1, unit="kWh", ts=T0),
        )
    with pytest.raises(BusError, match="no bus for the components"):
        Buses({"feeder": inner})
    await buses.close()
    await inner.close()
