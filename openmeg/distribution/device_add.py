"""Asking a running MEG, over its bus, to connect a device known by its address only."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from openmeg.core.messages import DeviceAdd, DeviceAdded, device_add_topic, device_added_topic

if TYPE_CHECKING:
    from datetime import datetime

    from openmeg.core.bus import Bus


async def request_device_add(
    bus: Bus, site: str, address: str, *, now: datetime, timeout_s: float
) -> DeviceAdded:
    """The MEG's answer to adding the device at ``HOST:PORT:UNIT``; ``TimeoutError`` after
    ``timeout_s`` seconds [s] without one."""
    replies = await bus.subscribe(device_added_topic(site))
    await bus.publish(device_add_topic(site), DeviceAdd(site=site, address=address, ts=now))
    async with asyncio.timeout(timeout_s):
        while True:
            _, msg = await replies.get()
            if isinstance(msg, DeviceAdded) and msg.address == address:
                return msg
