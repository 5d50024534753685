"""Both programs read the same addresses: the simulated field serves the demo at the site
file's addresses (moved to free ports), the platform connects with ``site_addresses``; and
``openmeg run --field site`` operates such a field without starting one of its own."""

import asyncio
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import yaml

from openmeg.app import LiveMeg
from openmeg.core.bus import Bus
from openmeg.core.clock import SimClock
from openmeg.core.messages import AlarmMessage
from openmeg.core.site import SITES_DIR, Site, load_site
from openmeg.core.store import Store, sqlite_url
from openmeg.core.wiring import site_addresses
from openmeg.sim.field import Field
from tests.field_harness import LiveSite
from tests.keys import shared_keystore
from tests.services import free_port

T0 = datetime(2026, 6, 1, 12, tzinfo=UTC)


def _free_ports(n: int) -> list[int]:
    ports: list[int] = []
    while len(ports) < n:
        if (port := free_port()) not in ports:
            ports.append(port)
    return ports


def _demo_on_free_ports(tmp_path: Path, edit: Any = None) -> Path:
    """The demo's site file with every address moved to a free port (devices sharing a port
    still share one), written to ``tmp_path``."""
    data = yaml.safe_load((SITES_DIR / "demo.yaml").read_text())
    entries = [data["utility"]["transfer_switch_address"]]
    entries += [e["address"] for e in data["devices"] + data["meters"] if "address" in e]
    ports = sorted({a["port"] for a in entries})
    moved = dict(zip(ports, _free_ports(len(ports)), strict=True))
    for a in entries:
        a["port"] = moved[a["port"]]
    if edit is not None:
        edit(data)
    path = tmp_path / "site.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


async def _field_and_platform(site: Site, bus: Bus, store: Store) -> LiveSite:
    clock = SimClock(T0 - timedelta(seconds=1))
    field = Field(site, clock=clock, step_s=1.0, horizon_h=1.0)
    plan = await field.start()
    assert [(w.id, w.host, w.port, w.unit) for w in plan] == [
        (a.id, a.host, a.port, a.unit) for a in site_addresses(site)
    ]
    meg = LiveMeg(
        site,
        clock=clock,
        bus=bus,
        store=store,
        keystore=shared_keystore(),
        addresses=site_addresses(site),
    )
    await meg.start()
    return LiveSite(field=field, meg=meg, clock=clock, step_s=1.0)


def _alarms(sub: Any) -> list[AlarmMessage]:
    out = []
    while sub.pending():
        _, msg = sub.get_nowait()
        assert isinstance(msg, AlarmMessage)
        out.append(msg)
    return out


async def test_field_and_platform_meet_at_the_site_files_addresses(
    tmp_path: Path, bus: Bus, store: Store
) -> None:
    site = load_site(_demo_on_free_ports(tmp_path))
    alarms = await bus.subscribe("meg/demo/operation/alarms/#")
    live = await _field_and_platform(site, bus, store)
    try:
        await live.step(3)
        assert set(live.meg.feeder.links) == {a.id for a in site_addresses(site)}
        assert live.meg.status.cycles == 3
        await asyncio.sleep(0.05)
        codes = {a.code for a in _alarms(alarms)}
        assert not codes & {"device_unreachable", "unexpected_models"}
    finally:
        await live.stop()


async def test_a_device_serving_other_models_than_expected_raises_a_warning(
    tmp_path: Path, bus: Bus, store: Store
) -> None:
    def expect_other_models(data: dict[str, Any]) -> None:
        pv = next(d for d in data["devices"] if d["id"] == "pv-h01")
        pv["address"]["models"] = [1, 101, 123]

    site = load_site(_demo_on_free_ports(tmp_path, expect_other_models))
    alarms = await bus.subscribe("meg/demo/operation/alarms/#")
    live = await _field_and_platform(site, bus, store)
    try:
        await live.step(2)
        await asyncio.sleep(0.05)
        [alarm] = [a for a in _alarms(alarms) if a.code == "unexpected_models"]
        address = site.device("pv-h01").address
        assert address is not None
        assert (alarm.source, alarm.severity, alarm.active) == ("pv-h01", "warning", True)
        assert alarm.text == (
            f"discovery at 127.0.0.1:{address.port}:1 found SunSpec models 1, 103, 123; the site "
            "file expects 1, 101, 123 (missing 101; not expected 103): check the device, or "
            "correct its models in the site file"
        )
        assert "pv-h01" in live.meg.feeder.links  # operated as discovery found it
    finally:
        await live.stop()


async def test_openmeg_run_field_site_operates_the_devices_at_the_site_files_addresses(
    tmp_path: Path,
) -> None:
    path = _demo_on_free_ports(tmp_path)
    site = load_site(path)
    field = Field(site, clock=SimClock(T0), step_s=1.0, horizon_h=1.0)
    await field.start()
    stop = asyncio.Event()
    stepping = asyncio.create_task(field.run(stop))
    try:
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "openmeg",
            "run",
            "--site",
            str(path),
            "--field",
            "site",
            "--cycles",
            "3",
            "--no-status",
            "--no-api",
            "--speed",
            "5",
            "--store",
            sqlite_url(tmp_path / "live.db"),
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
        out, _ = await asyncio.wait_for(proc.communicate(), 120)
    finally:
        stop.set()
        await stepping
        await field.stop()
    text = out.decode()
    assert proc.returncode == 0, text
    assert (
        "the site's field: 46 devices on Modbus TCP at the site file's addresses, hosts 127.0.0.1"
        in text
    )
    assert "simulated field (process" not in text
    assert "stopped cleanly" in text
    assert sum(d.writes for d in field.servers.devices.values()) > 0
