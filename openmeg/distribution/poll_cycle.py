"""The reads of one feeder cycle: every due device at once, each answer taken as it comes in, the
devices that have not answered by the deadline given up.

A device whose connection is open costs a future and a callback per read (no task, no timer of
its own: the cycle's deadline is the timeout); one that must connect first reads in a task.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from typing import TYPE_CHECKING

from openmeg.core.errors import DeviceError
from openmeg.distribution.poll_plan import ReadPlan

if TYPE_CHECKING:
    from openmeg.distribution.feeder import Link

Answered = tuple["Link", ReadPlan, list[bytes]]


class _Reading:
    """The reads of one device in a cycle, one after the other on its connection."""

    __slots__ = ("answers", "cycle", "future", "link", "plan", "task")

    def __init__(self, cycle: PollCycle, link: Link, plan: ReadPlan) -> None:
        self.cycle, self.link, self.plan = cycle, link, plan
        self.answers: list[bytes] = []
        self.future: asyncio.Future[bytes] | None = None
        self.task: asyncio.Task[None] | None = None

    def start(self) -> None:
        if self.link.device.master.connected:
            self._send()
        else:
            self.task = asyncio.create_task(self._connect_and_read())

    async def _connect_and_read(self) -> None:
        start, count = self.plan.reads[0]
        try:
            data = await self.link.device.master.read_bytes(start, count)
        except DeviceError as err:
            self.cycle.failed_with(self, str(err))
            return
        except Exception as err:  # not the device's doing: raised once the cycle is over
            self.cycle.errors.append(err)
            self.cycle.failed_with(self, repr(err))
            return
        self._got(data)

    def _send(self) -> None:
        start, count = self.plan.reads[len(self.answers)]
        try:
            self.future = self.link.device.master.send_read(start, count)
        except DeviceError as err:
            self.cycle.failed_with(self, str(err))
            return
        self.future.add_done_callback(self._answered)

    def _answered(self, future: asyncio.Future[bytes]) -> None:
        if future.cancelled():
            return
        start, count = self.plan.reads[len(self.answers)]
        master = self.link.device.master
        try:
            data = master.registers_of(future.result(), start, count)
        except DeviceError as err:
            self.cycle.failed_with(self, f"{master.address}: reading {count} at {start}: {err}")
            return
        self._got(data)

    def _got(self, data: bytes) -> None:
        self.answers.append(data)
        self.cycle.reads += 1
        if len(self.answers) < len(self.plan.reads):
            self._send()
        else:
            self.cycle.answered(self)

    def abandon(self) -> None:
        if self.future is not None and not self.future.done():
            self.future.cancel()
            self.link.device.master.close()  # a late answer must not linger
        if self.task is not None:
            self.task.cancel()


class PollCycle:
    """The devices a cycle reads, the answers in the order they came, the devices that failed."""

    def __init__(self, deadline_s: float) -> None:
        self.deadline_s = deadline_s
        self.deadline = asyncio.get_running_loop().time() + deadline_s
        self.open: dict[int, _Reading] = {}
        self.ready: deque[Answered] = deque()
        self.failed: list[tuple[Link, str]] = []
        self.errors: list[Exception] = []
        self.reads = 0
        self._wake = asyncio.Event()

    def read(self, link: Link, plan: ReadPlan) -> None:
        reading = _Reading(self, link, plan)
        self.open[id(reading)] = reading
        reading.start()

    def answered(self, reading: _Reading) -> None:
        if self.open.pop(id(reading), None) is None:
            return  # given up already
        self.ready.append((reading.link, reading.plan, reading.answers))
        self._wake.set()

    def failed_with(self, reading: _Reading, reason: str) -> None:
        if self.open.pop(id(reading), None) is None:
            return
        self.failed.append((reading.link, reason))
        self._wake.set()

    async def answers(self) -> list[Answered]:
        """The answers come in since the last call, waiting for one until the deadline; ``[]``
        once every device answered, failed or was given up."""
        loop = asyncio.get_running_loop()
        while not self.ready and self.open:
            left = self.deadline - loop.time()
            if left <= 0:
                await self._give_up()
                break
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(left):
                    await self._wake.wait()
        out = list(self.ready)
        self.ready.clear()
        return out

    async def _give_up(self) -> None:
        late = list(self.open.values())
        self.open.clear()
        for reading in late:
            reading.abandon()
        tasks = [r.task for r in late if r.task is not None]
        if tasks:
            await asyncio.wait(tasks)  # each ends on its cancellation
        for reading in late:
            reason = f"no answer within the poll deadline of {self.deadline_s:g} s"
            self.failed.append((reading.link, reason))
