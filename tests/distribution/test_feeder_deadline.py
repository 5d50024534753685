"""The feeder's cycle reads every device at once within its deadline: a dead device goes stale
and alarmed within three poll periods, is backed off, never delays the others, and recovers."""

from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest

from openmeg.core.bus import Bus
from openmeg.core.clock import SimClock
from openmeg.core.messages import AlarmMessage, PointUpdate
from openmeg.core.points import Quality
from openmeg.core.site import load_site
from openmeg.distribution.feeder import DerDataFeeder, Subscription
from openmeg.sim.live_plant import SimulatedPlant
from openmeg.sim.wire import DeviceServers
from tests.distribution.faulty_link import FaultyLink

T0 = datetime(2026, 6, 1, 16, tzinfo=UTC)
DEVICES = ("pv-h01", "pv-h03", "pv-h05", "pv-h07", "pv-h09", "pv-h10", "pv-school", "pv-factory")
PERIOD_S = 0.4  # the deadline is half of it: 0.2 s


@pytest.fixture
async def links() -> AsyncIterator[dict[str, FaultyLink]]:
    """The demo's PV inverters on the wire, each behind a proxy that can fail it."""
    site = load_site("demo")
    plant = SimulatedPlant(site, start=T0, step_s=1.0, horizon_h=0.1)
    plant.step()
    servers = DeviceServers(
        site, plant, now=lambda: plant.time, base_port=0, only=frozenset(DEVICES)
    )
    plan = await servers.start()
    proxies = {w.id: FaultyLink(w.port) for w in plan}
    try:
        for proxy in proxies.values():
            await proxy.start()
        yield proxies
    finally:
        for proxy in proxies.values():
            await proxy.stop()
        await servers.stop()


async def _feeder(bus: Bus, links: dict[str, FaultyLink], clock: SimClock) -> DerDataFeeder:
    feeder = DerDataFeeder(
        "demo", bus, clock, poll_period_s=PERIOD_S, deadline_fraction=0.5, backoff_max_s=1.6
    )
    for device in DEVICES:
        await feeder.add("127.0.0.1", links[device].port, 1)
    feeder.subscribe(Subscription(device="*", point="p_kw", interval_s=PERIOD_S))
    return feeder


@pytest.mark.parametrize("fault", ["stopped", "silent"])
async def test_a_dead_device_is_stale_alarmed_backed_off_and_recovers_without_delaying_the_others(
    bus: Bus, links: dict[str, FaultyLink], fault: str
) -> None:
    clock = SimClock(T0)
    feeder = await _feeder(bus, links, clock)
    updates = await bus.subscribe("meg/demo/der/pv-h01/p_kw")
    alarms = await bus.subscribe("meg/demo/operation/alarms/#")
    try:
        assert not (await feeder.poll()).failed_devices
        _, good = await updates.get(timeout=5)
        assert isinstance(good, PointUpdate) and good.quality is Quality.GOOD
        if fault == "stopped":
            await links["pv-h01"].stop()  # refuses connections
        else:
            links["pv-h01"].silent = True  # accepts, never answers
        master = feeder.links["pv-h01"].device.master
        attempts, durations_ms = [], []
        for cycle in range(1, 13):
            await clock.sleep(PERIOD_S)
            before = master.requests
            report = await feeder.poll()
            attempts.append(master.requests - before)
            durations_ms.append(report.duration_ms)
            assert report.failed_devices in ([], ["pv-h01"])
            assert report.collected >= len(DEVICES) - 1  # the others, every cycle
            if cycle < 3:
                assert alarms.pending() == 0 and updates.pending() == 0
            if cycle == 3:  # three periods after it went silent: stale, alarmed
                assert report.failed_devices == ["pv-h01"]
                _, alarm = await alarms.get(timeout=5)
                assert isinstance(alarm, AlarmMessage) and alarm.active
                assert alarm.code == "device_unreachable" and alarm.source == "pv-h01"
                _, stale = await updates.get(timeout=5)
                assert isinstance(stale, PointUpdate) and stale.quality is Quality.STALE
                assert stale.value == good.value
        # the deadline (0.2 s) bounds every cycle, where one read alone may wait 1 s
        assert max(durations_ms) < 200 + 150, durations_ms
        # tried in polls 1-3, then after 2, 4 and 4 periods (backoff 0.8, 1.6, capped at 1.6 s)
        assert [i + 1 for i, n in enumerate(attempts) if n] == [1, 2, 3, 5, 9]
        if fault == "stopped":
            await links["pv-h01"].start()
        else:
            links["pv-h01"].silent = False
        for _ in range(6):
            await clock.sleep(PERIOD_S)
            if not (await feeder.poll()).failed_devices and not feeder.links["pv-h01"].unreachable:
                break
        _, cleared = await alarms.get(timeout=5)
        assert isinstance(cleared, AlarmMessage) and not cleared.active
        _, again = await updates.get(timeout=5)
        assert isinstance(again, PointUpdate) and again.quality is Quality.GOOD
        assert again.value == good.value
    finally:
        feeder.close()


async def test_slow_devices_are_polled_at_once_not_one_after_the_other(
    bus: Bus, links: dict[str, FaultyLink]
) -> None:
    clock = SimClock(T0)
    feeder = await _feeder(bus, links, clock)
    try:
        assert len((await feeder.poll()).failed_devices) == 0
        for proxy in links.values():
            proxy.delay_s = 0.05  # each answer takes 50 ms
        await clock.sleep(PERIOD_S)
        report = await feeder.poll()
        assert report.collected == len(DEVICES) and not report.failed_devices
        # one after the other: 8 x 50 = 400 ms; at once: one 50 ms wait
        assert 50 <= report.duration_ms < 150, report.duration_ms
    finally:
        feeder.close()


def test_a_deadline_outside_the_period_is_refused() -> None:
    with pytest.raises(ValueError, match=r"deadline_fraction 1.5 is outside \(0, 1\]"):
        DerDataFeeder("demo", None, SimClock(T0), deadline_fraction=1.5)  # type: ignore[arg-type]
