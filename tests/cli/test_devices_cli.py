"""``openmeg devices`` and ``openmeg devices add`` against a running ``openmeg run --mqtt``."""

import asyncio
import contextlib
import json
import os
import signal
import sys
from datetime import UTC, datetime
from pathlib import Path

import yaml

from openmeg.core.audit import AuditLog
from openmeg.core.keystore import Keystore
from openmeg.core.keystore_kek import KeyEncryptionKey
from openmeg.core.points import PointId
from openmeg.core.site import SITES_DIR, load_site
from openmeg.core.store import Store, sqlite_url
from openmeg.sim.live_plant import SimulatedPlant
from openmeg.sim.wire import DeviceServers
from tests.services import KEYSTORE_PASSPHRASE, Broker, free_port


async def _openmeg(
    *args: str, timeout: float = 60, env: dict[str, str] | None = None
) -> tuple[int, str]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "openmeg",
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        env={**os.environ, **(env or {})},
    )
    out, _ = await asyncio.wait_for(proc.communicate(), timeout)
    return proc.returncode or 0, out.decode()


async def test_devices_lists_every_device_at_its_address_in_the_site_file() -> None:
    # the demo gives every device its address: a base port shifts none of them
    rc, out = await _openmeg("devices", "--site", "demo", "--json", "--base-port", "20000")
    assert rc == 0
    plan = json.loads(out)
    assert plan[0] == {
        "id": "pcc",
        "kind": "transfer_switch",
        "family": "transfer_switch",
        "host": "127.0.0.1",
        "port": 15020,
        "unit": 1,
        "models": [1, 64900],
    }
    meters = [d for d in plan if d["kind"] == "meter"]
    assert {d["port"] for d in meters} == {15039}
    assert [d["unit"] for d in meters] == list(range(1, 23))
    # the transfer switch, 14 DERs, the heat store and 3 sensors: a port each; the meters'
    # gateway; then the network's 4 line switches and its tie, a port each
    assert {d["port"] for d in plan if d["kind"] != "meter"} == set(range(15020, 15045)) - {15039}
    assert [d["id"] for d in plan if d["kind"] == "line_switch"] == [
        "cb-r",
        "sw-r3",
        "sw-r5",
        "sw-r9",
        "tie-r18-c20",
    ]


async def test_devices_without_addresses_are_laid_out_from_the_base_port(tmp_path: Path) -> None:
    data = yaml.safe_load((SITES_DIR / "demo.yaml").read_text())
    data["utility"].pop("transfer_switch_address")
    network = data["network"]
    for entry in data["devices"] + data["meters"] + network["switches"] + network["ties"]:
        entry.pop("address", None)
    site = tmp_path / "site.yaml"
    site.write_text(yaml.safe_dump(data))
    rc, out = await _openmeg("devices", "--site", str(site), "--json", "--base-port", "20000")
    assert rc == 0
    plan = json.loads(out)
    assert plan[0]["id"] == "pcc" and plan[0]["port"] == 20000
    assert {d["port"] for d in plan if d["kind"] != "meter"} == set(range(20000, 20025)) - {20019}
    assert {(d["port"], d["unit"]) for d in plan if d["kind"] == "meter"} == {
        (20019, u) for u in range(1, 23)
    }


async def test_devices_add_connects_a_running_meg_to_a_new_device(
    tmp_path: Path, broker: Broker
) -> None:
    demo = load_site("demo")
    renamed = tuple(
        d.model_copy(update={"id": "pv-new"}) if d.id == "pv-h10" else d for d in demo.devices
    )
    meters = tuple(
        m.model_copy(update={"devices": tuple("pv-new" if x == "pv-h10" else x for x in m.devices)})
        for m in demo.meters
    )
    assert demo.scenario is not None
    physics = {("pv-new" if k == "pv-h10" else k): v for k, v in demo.scenario.devices.items()}
    scenario = demo.scenario.model_copy(update={"devices": physics})
    other = demo.model_copy(update={"devices": renamed, "meters": meters, "scenario": scenario})
    plant = SimulatedPlant(
        other, start=datetime(2026, 6, 1, 12, tzinfo=UTC), step_s=1.0, horizon_h=0.1
    )
    plant.step()
    extra = DeviceServers(
        other, plant, now=lambda: plant.time, base_port=0, only=frozenset({"pv-new"})
    )
    [w] = await extra.start()
    env = {**os.environ, **broker.env(), "OPENMEG_MQTT_CA": str(broker.ca_file)}
    mqtt = broker.address(tls=True)
    db = tmp_path / "live.db"
    rc, out = await _openmeg(
        "users", "add", "op-7", "--role", "operator", "--store", sqlite_url(db), env=env
    )
    assert rc == 0, out
    operator = {
        **env,
        "OPENMEG_USER": "op-7",
        "OPENMEG_PASSWORD": out.split("password ")[1].split()[0],
    }
    api = f"http://127.0.0.1:{free_port()}"
    run = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "openmeg",
        "run",
        "--site",
        "demo",
        "--mqtt",
        mqtt,
        "--modbus-port",
        "0",
        "--no-status",
        "--api-port",
        api.rsplit(":", 1)[1],
        "--speed",
        "5",
        "--store",
        sqlite_url(db),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        cwd=tmp_path,
        env=env,
    )
    try:
        closed = f"127.0.0.1:{free_port()}:1"
        for _ in range(60):  # until the running MEG answers
            rc, out = await _openmeg(
                "devices",
                "add",
                closed,
                "--mqtt",
                mqtt,
                "--api",
                api,
                "--timeout-s",
                "2",
                env=operator,
            )
            if "cannot connect" in out:
                break
            await asyncio.sleep(0.5)
        assert rc == 1 and f"error: {closed}: cannot connect" in out, out
        where = f"{w.host}:{w.port}:{w.unit}"
        wrong = {**operator, "OPENMEG_PASSWORD": "not the password"}
        rc, out = await _openmeg("devices", "add", where, "--mqtt", mqtt, "--api", api, env=wrong)
        assert rc == 1 and "log-in as 'op-7' refused: wrong name or password" in out, out
        rc, out = await _openmeg(
            "devices", "add", "127.0.0.1:5432:1", "--mqtt", mqtt, "--api", api, env=operator
        )
        assert rc == 1 and "127.0.0.1:5432 is outside the networks" in out, out
        rc, out = await _openmeg(
            "devices", "add", where, "--mqtt", mqtt, "--api", api, env=operator
        )
        assert rc == 0, out
        assert "added pv-new (SunSpec models 1, 103, 123" in out
        rc, out = await _openmeg("devices", "add", "no-port", "--mqtt", mqtt, env=operator)
        assert rc == 2 and "must be HOST:PORT:UNIT" in out
        await asyncio.sleep(3)
    finally:
        with contextlib.suppress(ProcessLookupError):
            run.send_signal(signal.SIGINT)
        _, err = await asyncio.wait_for(run.communicate(), 60)
        await extra.stop()
    assert run.returncode == 0, err.decode()
    store = Store(sqlite_url(db))
    try:
        assert store.history(PointId(site="demo", device="pv-new", name="p_kw"))
        adds = [
            r
            for r in AuditLog(store, _broker_keystore(broker).secret("audit/hmac")).records(
                limit=10_000
            )
            if "device_add" in r.action
        ]
        assert [(r.actor, r.action, r.target) for r in adds if r.action != "device_add_authorised"][
            -2:
        ] == [
            ("op-7", "device_add_refused", "127.0.0.1:5432:1"),
            ("op-7", "device_add", "pv-new"),
        ]
    finally:
        store.close()


def _broker_keystore(broker: Broker) -> Keystore:
    """The keystore the MEG ran with: the broker's, which holds the components' passwords."""
    return Keystore.open(broker.keystore, KeyEncryptionKey.passphrase(KEYSTORE_PASSPHRASE))
