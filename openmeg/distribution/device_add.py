"""Asking a running MEG, over its bus, to connect a device known by its address only, with an
operator's signed authorisation for that address."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from openmeg.core.messages import DeviceAdd, DeviceAdded, device_add_topic, device_added_topic

if TYPE_CHECKING:
    from datetime import datetime

    from openmeg.core.bus import Bus


async def request_device_add(
    bus: Bus,
    site: str,
    address: str,
    *,
    authorisation: str,
    now: datetime,
    timeout_s: float,
) -> DeviceAdded:
    """The MEG's answer to adding the device at ``HOST:PORT:UNIT`` (``authorisation``: an
    operator's token for it); ``TimeoutError`` after ``timeout_s`` seconds [s] without one."""
    replies = await bus.subscribe(device_added_topic(site))
    add = DeviceAdd(site=site, address=address, ts=now, authorisation=authorisation)
    await bus.publish(device_add_topic(site), add)
    async with asyncio.timeout(timeout_s):
        while True:
            _, msg = await replies.get()
            if isinstance(msg, DeviceAdded) and msg.address == address:
                return msg
