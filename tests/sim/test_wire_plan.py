"""Where the simulated field serves each device: at the site file's address, the others laid
out from the base port (skipping the site's ports), or every one at a free port."""

from datetime import UTC, datetime

from openmeg.core.site import SITES_DIR, Site, load_site
from openmeg.core.wiring import site_addresses
from openmeg.sim.live_plant import SimulatedPlant
from openmeg.sim.wire import DeviceServers, wire_plan

SMALL_LAN = SITES_DIR / "examples" / "small-lan.yaml"


def _without_address(site: Site, *ids: str) -> Site:
    devices = tuple(
        d.model_copy(update={"address": None}) if d.id in ids else d for d in site.devices
    )
    utility = site.utility
    if "pcc" in ids:
        utility = utility.model_copy(update={"transfer_switch_address": None})
    return site.model_copy(update={"devices": devices, "utility": utility})


def _at(plan: list, device: str) -> tuple[str, int, int]:  # type: ignore[type-arg]
    w = next(w for w in plan if w.id == device)
    return w.host, w.port, w.unit


def test_the_site_files_addresses_win_over_the_base_port() -> None:
    site = load_site(SMALL_LAN)
    plan = wire_plan(site, base_port=20000)
    assert [(w.id, w.host, w.port, w.unit) for w in plan] == [
        (a.id, a.host, a.port, a.unit) for a in site_addresses(site)
    ]


def test_devices_without_an_address_count_up_from_the_base_port_past_the_sites_ports() -> None:
    site = _without_address(load_site("demo"), "pcc", "pv-h01")
    # 15020 and 15021 are free again; from 15030 the count skips the site's ports (up to the
    # line switches' 15040 .. 15044) to 15045
    assert _at(wire_plan(site), "pcc") == ("127.0.0.1", 15020, 1)
    assert _at(wire_plan(site), "pv-h01") == ("127.0.0.1", 15021, 1)
    plan = wire_plan(site, base_port=15030)
    assert [_at(plan, "pcc"), _at(plan, "pv-h01")] == [
        ("127.0.0.1", 15045, 1),
        ("127.0.0.1", 15046, 1),
    ]
    assert _at(plan, "bess-h01") == ("127.0.0.1", 15022, 1)  # the others stay where they are


async def test_base_port_0_serves_every_device_on_a_free_port_keeping_units_and_gateways() -> None:
    site = load_site(SMALL_LAN)
    plant = SimulatedPlant(
        site, start=datetime(2026, 6, 1, 12, tzinfo=UTC), step_s=1.0, horizon_h=0.1
    )
    servers = DeviceServers(site, plant, now=lambda: plant.time, base_port=0)
    assert {(w.host, w.port) for w in servers.plan} == {("127.0.0.1", 0)}
    plan = await servers.start()
    try:
        assert {w.host for w in plan} == {"127.0.0.1"}
        assert len({w.port for w in plan}) == 6 and 0 not in {w.port for w in plan}
    finally:
        await servers.stop()
    demo = DeviceServers(load_site("demo"), plant, now=lambda: plant.time, base_port=0)
    assert {w.server for w in demo.plan if w.kind == "meter"} == {"127.0.0.1:15039"}
    assert len({w.server for w in demo.plan}) == 25  # 24 devices a port each, one gateway
    assert [w.unit for w in demo.plan if w.kind == "meter"] == list(range(1, 23))
