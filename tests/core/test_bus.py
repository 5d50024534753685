"""The same bus tests run in-process and over a real MQTT broker."""

import asyncio
import uuid
from datetime import UTC, datetime

import pytest

from openmeg.core.bus import Bus, InProcessBus, bursts, messages, topic_matches
from openmeg.core.errors import BusError
from openmeg.core.messages import ModeChange, PointUpdate, decode, encode
from openmeg.core.points import Quality

TS = datetime(2026, 6, 1, 12, tzinfo=UTC)


def test_topic_filters() -> None:
    assert topic_matches("meg/+/der/#", "meg/demo/der/pv1/p_kw")
    assert topic_matches("meg/demo/#", "meg/demo")
    assert not topic_matches("meg/+/der/+", "meg/demo/der/pv1/p_kw")
    assert not topic_matches("meg/demo/der", "meg/demo/der/pv1")
    assert topic_matches("meg/demo/der/pv1/p_kw", "meg/demo/der/pv1/p_kw")


def test_messages_round_trip_and_reject_malformed() -> None:
    msg = PointUpdate(
        site="s", device="d", name="p_kw", value=1.5, unit="kW", ts=TS, quality=Quality.ESTIMATED
    )
    assert decode(encode(msg)) == msg
    with pytest.raises(ValueError):
        decode(b'{"type": "point", "v": 1, "site": "s"}')
    with pytest.raises(ValueError):
        decode(
            b'{"type": "point", "v": 2, "site": "s", "device": "d", "name": "n", '
            b'"value": 1, "unit": "kW", "ts": "2026-01-01T00:00:00Z"}'
        )
    with pytest.raises(ValueError):
        decode(b"not json")


async def test_publish_reaches_matching_subscribers_in_order(bus: Bus) -> None:
    site = f"t{uuid.uuid4().hex[:8]}"
    der = await bus.subscribe(f"meg/{site}/der/#")
    pv_only = await bus.subscribe(f"meg/{site}/der/pv1/+")
    mode = await bus.subscribe(f"meg/{site}/distribution/#")
    for i in range(5):
        await bus.publish(
            f"meg/{site}/der/pv1/p_kw",
            PointUpdate(site=site, device="pv1", name="p_kw", value=float(i), unit="kW", ts=TS),
        )
    await bus.publish(
        f"meg/{site}/der/bess1/soc",
        PointUpdate(site=site, device="bess1", name="soc", value=0.5, unit="1", ts=TS),
    )
    await bus.publish(
        f"meg/{site}/distribution/pcc/mode", ModeChange(site=site, mode="island", ts=TS)
    )
    values = []
    for _ in range(6):
        topic, msg = await der.get(timeout=5)
        assert isinstance(msg, PointUpdate)
        values.append((topic.split("/")[3], msg.value))
    assert values == [
        ("pv1", 0.0),
        ("pv1", 1.0),
        ("pv1", 2.0),
        ("pv1", 3.0),
        ("pv1", 4.0),
        ("bess1", 0.5),
    ]
    got = [(await pv_only.get(timeout=5))[1] for _ in range(5)]
    assert [m.value for m in got if isinstance(m, PointUpdate)] == [0.0, 1.0, 2.0, 3.0, 4.0]
    _, m = await mode.get(timeout=5)
    assert isinstance(m, ModeChange) and m.mode == "island"
    assert der.pending() == 0 and pv_only.pending() == 0


async def test_bad_topics_are_refused(bus: Bus) -> None:
    with pytest.raises(BusError, match="wildcards"):
        await bus.publish("meg/x/#", ModeChange(site="x", mode="grid", ts=TS))
    with pytest.raises(BusError, match="must be last"):
        await bus.subscribe("meg/#/x")


async def test_a_subscription_is_consumed_until_stop_without_polling() -> None:
    bus = InProcessBus()
    sub = await bus.subscribe("meg/demo/#")
    stop = asyncio.Event()
    got: list[list[str]] = []

    async def consume() -> None:
        async for burst in bursts(sub, stop):
            got.append([m.mode for _, m in burst if isinstance(m, ModeChange)])

    task = asyncio.create_task(consume())
    ts = TS
    for mode in ("island", "grid"):  # published together: one burst
        await bus.publish("meg/demo/distribution/mode", ModeChange(site="demo", mode=mode, ts=ts))
    await asyncio.sleep(0.05)
    assert got == [["island", "grid"]] and not task.done()  # waiting, not spinning
    await bus.publish("meg/demo/distribution/mode", ModeChange(site="demo", mode="island", ts=ts))
    stop.set()  # what was waiting is taken, then it ends
    await asyncio.wait_for(task, 1)
    assert got == [["island", "grid"], ["island"]]
    assert [m async for m in messages(sub, stop)] == []  # stopped: ends at once
    await bus.close()
