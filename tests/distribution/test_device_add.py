"""Asking a running MEG over the bus to add a device: the answer to this address, or a timeout."""

import asyncio
from datetime import UTC, datetime

import pytest

from openmeg.core.bus import Bus
from openmeg.core.messages import DeviceAdd, DeviceAdded, device_add_topic, device_added_topic
from openmeg.distribution.device_add import request_device_add

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)


async def _answer(bus: Bus, *, address: str) -> None:
    """A MEG that first answers another request, then this one."""
    requests = await bus.subscribe(device_add_topic("demo"))
    _, msg = await requests.get()
    assert isinstance(msg, DeviceAdd) and msg.address == address and msg.ts == NOW
    assert msg.authorisation == "signed"
    for other in ("10.0.0.9:502:1", address):
        reply = DeviceAdded(
            site="demo", address=other, ok=True, device="pv-x", models=[1, 701], ts=NOW
        )
        await bus.publish(device_added_topic("demo"), reply)


async def test_the_answer_to_this_address_is_returned(bus: Bus) -> None:
    address = "127.0.0.1:15099:1"
    meg = asyncio.create_task(_answer(bus, address=address))
    await asyncio.sleep(0.05)  # the MEG listens
    reply = await request_device_add(
        bus, "demo", address, authorisation="signed", now=NOW, timeout_s=5.0
    )
    await meg
    assert reply.address == address and reply.ok and reply.device == "pv-x"


async def test_no_answer_times_out(bus: Bus) -> None:
    with pytest.raises(TimeoutError):
        await request_device_add(
            bus, "demo", "127.0.0.1:15099:1", authorisation="", now=NOW, timeout_s=0.1
        )
