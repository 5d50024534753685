"""The platform's services as tasks of one TaskGroup (``LiveMeg.run``) against the simulated
field as a program of its own, on a clock 60 times faster than real time from a few seconds
before a quarter hour: the historian archives points in batches, the head-end's 15-minute
readings reach the MDMS through the bus (customer meters and devices' own meters), the SCADA
sees the devices, and stopping leaves no task behind."""

import asyncio
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from openmeg.app import LiveMeg
from openmeg.cli.field_process import FieldProcess, simulated_field
from openmeg.core.bus import InProcessBus, waiting
from openmeg.core.clock import SimClock
from openmeg.core.messages import (
    MeterReadings,
    readings_topic,
    split_readings,
    stored_readings_topic,
)
from openmeg.core.site import load_site
from openmeg.core.store import Store, sqlite_url
from openmeg.customer.revenue_calc import revenue_devices
from tests.keys import shared_keystore

T0 = datetime(2026, 6, 1, 12, 14, 50, tzinfo=UTC)
QUARTER = datetime(2026, 6, 1, 12, 15, tzinfo=UTC)
SPEED = 60.0
STEP_S = 5.0


@pytest.fixture
async def field() -> AsyncIterator[tuple[FieldProcess, float]]:
    anchor = time.time()
    async with simulated_field(
        "demo", start=T0, anchor_epoch_s=anchor, speed=SPEED, step_s=STEP_S, base_port=0
    ) as f:
        yield f, anchor


async def test_the_services_run_as_tasks_against_the_field(
    tmp_path: Path, field: tuple[FieldProcess, float]
) -> None:
    f, anchor = field
    store = Store(sqlite_url(tmp_path / "meg.db"))
    store.create_schema()
    site = load_site("demo")
    bus = InProcessBus()
    meg = LiveMeg(
        site,
        clock=SimClock(T0, speed=SPEED, anchor_epoch_s=anchor),
        bus=bus,
        store=store,
        keystore=shared_keystore(),
        addresses=f.addresses,
        step_s=STEP_S,
    )
    await meg.start()
    published = await bus.subscribe(readings_topic("demo", "+"))
    stored = await bus.subscribe(stored_readings_topic("demo", "+"))
    stop = asyncio.Event()
    before = asyncio.all_tasks()  # (the field's output is read by a task of its own)
    runner = asyncio.create_task(meg.run(stop))
    closing = QUARTER + timedelta(minutes=15)  # the first interval whose start was seen
    try:
        deadline = time.monotonic() + 150
        while meg.clock.now() < closing + timedelta(seconds=4 * STEP_S):
            assert not runner.done(), runner
            assert time.monotonic() < deadline, f"the platform is at {meg.clock.now()}"
            await asyncio.sleep(0.2)
        archived_while_running = meg.historian.stored
        stop.set()
        await asyncio.wait_for(runner, 60)
    finally:
        stop.set()
        await asyncio.wait_for(asyncio.gather(runner, return_exceptions=True), 60)
        await meg.stop()
    assert [t for t in asyncio.all_tasks() - before if not t.done()] == []
    try:
        # the historian archived points in batches while the services ran
        assert 0 < archived_while_running < meg.historian.stored  # and the latest at the stop
        assert store.count_points("demo") >= meg.historian.stored
        # readings closed by the head-end travelled the bus to the MDMS, which stored them
        sent = [m for _, msg in waiting(published) for m in split_readings(msg)]
        came = [m for _, m in waiting(stored) if isinstance(m, MeterReadings)]
        meters = {m.id for m in site.meters}
        assert {m.meter for m in sent} >= meters  # every customer meter
        assert {m.meter for m in sent} & set(revenue_devices(site))  # and devices' own meters
        assert {(m.meter, m.channel) for m in came} == {(m.meter, m.channel) for m in sent}
        assert meg.ingest.refused == 0 and meg.readings_ingested >= len(sent)
        frame = meg.readings.long_frame(sorted(meters), QUARTER, closing)
        assert set(frame["meter"]) == meters
        assert set(frame["interval_start"]) == {QUARTER}
        assert (frame["value_kwh"] >= 0).all()
        # the SCADA saw every device the feeder polls
        snapshot = meg.scada.snapshot()
        assert set(meg.feeder.links) <= set(snapshot["devices"])
        assert len(meg.feeder.links) == 46
        assert meg.status.cycles > (closing - T0).total_seconds() / STEP_S
        # nothing the platform itself published was refused at any service's edge
        assert meg.edge.total == 0, meg.edge.last
    finally:
        store.close()
