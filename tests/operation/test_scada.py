"""SCADA / DER management server: live state, limit alarms with clearing bands, acknowledge,
alarms raised elsewhere, operator commands through the feeder, the event log."""

import asyncio
from datetime import UTC, datetime, timedelta

import pytest

from openmeg.core.audit import AuditLog
from openmeg.core.bus import Bus
from openmeg.core.messages import AlarmMessage, ModeChange, PointUpdate, alarm_topic, point_topic
from openmeg.core.points import Quality
from openmeg.core.store import Store
from openmeg.operation.scada import DerManagementServer
from tests.keys import audit_key

T0 = datetime(2026, 6, 1, 12, tzinfo=UTC)


async def _send(
    bus: Bus,
    device: str,
    name: str,
    value: float,
    s: int,
    unit: str = "degC",
    quality: Quality = Quality.GOOD,
) -> None:
    await bus.publish(
        point_topic("demo", device, name, domain="distribution"),
        PointUpdate(
            site="demo",
            device=device,
            name=name,
            value=value,
            unit=unit,
            ts=T0 + timedelta(seconds=s),
            quality=quality,
        ),
    )


async def _drain(scada: DerManagementServer) -> None:
    """Take in everything, waiting a moment for messages still on their way (MQTT)."""
    quiet = 0
    while quiet < 3:
        quiet = 0 if await scada.pump() else quiet + 1
        await asyncio.sleep(0.02)


async def test_temperature_alarm_raises_holds_in_the_band_clears_and_is_acknowledged(
    bus: Bus, store: Store
) -> None:
    scada = DerManagementServer("demo", bus, store, audit=AuditLog(store, audit_key()))
    await scada.start()
    alarms = await bus.subscribe("meg/demo/operation/alarms/#")
    try:
        for s, value in enumerate([75.0, 80.0, 81.5, 79.0, 78.5]):
            await _send(bus, "sensor-chp1", "temperature_c", value, s)
        await _drain(scada)
        [alarm] = scada.alarms(active_only=True)
        assert alarm.key == "sensor-chp1/temperature_c_high"
        assert alarm.text == "temperature_c 81.5 degC is above 80"
        assert alarm.raised_at == T0 + timedelta(seconds=2) and not alarm.acknowledged
        _, raised = await alarms.get(timeout=5)
        assert isinstance(raised, AlarmMessage) and raised.active and raised.severity == "warning"
        scada.acknowledge(alarm.key, user="operator-1", ts=T0 + timedelta(seconds=6))
        await _send(bus, "sensor-chp1", "temperature_c", 77.9, 7)  # 2 below the limit: clears
        await _send(
            bus, "sensor-chp1", "temperature_c", float("nan"), 8, quality=Quality.INVALID
        )  # an invalid value judges nothing
        await _drain(scada)
        assert scada.alarms(active_only=True) == []
        assert alarm.acknowledged and alarm.acknowledged_by == "operator-1"
        assert alarm.cleared_at == T0 + timedelta(seconds=7)
        kinds = [(e["kind"], e["code"]) for e in store.events("demo")]
        assert kinds == [
            ("alarm", "temperature_c_high"),
            ("alarm_ack", "temperature_c_high"),
            ("alarm_clear", "temperature_c_high"),
        ]
        with pytest.raises(
            KeyError, match="no alarm 'x/y'; alarms: sensor-chp1/temperature_c_high"
        ):
            scada.acknowledge("x/y", user="operator-1", ts=T0)
        assert scada.snapshot()["devices"]["sensor-chp1"]["temperature_c"] != 20.0
    finally:
        await scada.stop()


async def test_low_limits_device_patterns_and_alarms_from_elsewhere(bus: Bus, store: Store) -> None:
    scada = DerManagementServer("demo", bus, store, audit=AuditLog(store, audit_key()))
    await scada.start()
    try:
        await _send(bus, "bess-community", "soc", 0.11, 0, unit="1")
        await _send(bus, "hs1", "soc", 0.05, 0, unit="1")  # a heat store: no battery limit
        await _send(bus, "grid", "voltage_min_pu", 0.893, 0, unit="pu")
        await bus.publish(
            alarm_topic("demo", "pv-h01"),
            AlarmMessage(
                site="demo",
                source="pv-h01",
                code="device_unreachable",
                text="device unreachable",
                active=True,
                ts=T0,
                severity="critical",
            ),
        )
        await bus.publish(
            "meg/demo/distribution/mode", ModeChange(site="demo", mode="island", ts=T0)
        )
        await _drain(scada)
        active = {a.key: a.severity for a in scada.alarms(active_only=True)}
        assert active == {
            "bess-community/soc_low": "warning",
            "grid/voltage_min_pu_low": "critical",
            "pv-h01/device_unreachable": "critical",
        }
        assert scada.snapshot()["mode"] == "island"
        await bus.publish(
            alarm_topic("demo", "pv-h01"),
            AlarmMessage(
                site="demo",
                source="pv-h01",
                code="device_unreachable",
                text="answers again",
                active=False,
                ts=T0 + timedelta(seconds=5),
            ),
        )
        await _send(bus, "bess-community", "soc", 0.135, 6, unit="1")  # inside the 0.02 band
        await _drain(scada)
        active_now = {a.key for a in scada.alarms(active_only=True)}
        assert active_now == {"bess-community/soc_low", "grid/voltage_min_pu_low"}
        field = [
            (e["kind"], e["text"])
            for e in store.events("demo")
            if e["code"] == "device_unreachable"
        ]
        assert field == [("alarm", "device unreachable"), ("alarm_clear", "answers again")]
    finally:
        await scada.stop()


async def test_operator_commands_go_through_the_feeder_and_are_logged(
    bus: Bus, store: Store
) -> None:
    from openmeg.core.clock import SimClock
    from openmeg.core.site import load_site
    from openmeg.distribution.feeder import DerDataFeeder
    from openmeg.sim.live_plant import SimulatedPlant
    from openmeg.sim.wire import DeviceServers

    site = load_site("demo")
    plant = SimulatedPlant(site, start=T0, step_s=1.0, horizon_h=0.1)
    plant.step()
    servers = DeviceServers(
        site, plant, now=lambda: plant.time, base_port=0, only=frozenset({"bess-community"})
    )
    [w] = await servers.start()
    feeder = DerDataFeeder("demo", bus, SimClock(T0))
    scada = DerManagementServer(
        "demo", bus, store, audit=AuditLog(store, audit_key()), commander=feeder.command
    )
    try:
        await feeder.add(w.host, w.port, w.unit)
        ok = await scada.command("bess-community", "p_set_kw", 30.0, user="operator-1", ts=T0)
        refused = await scada.command("bess-community", "soc", 0.5, user="operator-1", ts=T0)
        assert ok.accepted and not refused.accepted
        plant.step()
        assert plant.read()["bess-community/p_kw"] == pytest.approx(30.0)  # 20.0 % of 150 kW
        texts = [e["text"] for e in store.events("demo", kind="command")]
        assert texts == [
            "operator-1 set bess-community/p_set_kw = 30.0: done",
            "operator-1 set bess-community/soc = 0.5: refused: bess-community/soc is read-only; "
            "its controls: connected, p_set_kw",
        ]
    finally:
        feeder.close()
        await servers.stop()


def test_alarm_limits_from_the_site_file_replace_and_add(tmp_path: object) -> None:
    from pathlib import Path

    import yaml

    from openmeg.core.errors import SiteFileError
    from openmeg.core.site import load_site, resolve_site_path
    from openmeg.operation.scada import DEFAULT_LIMITS, Limit, site_limits

    raw = yaml.safe_load(resolve_site_path("demo").read_text())
    raw["alarm_limits"] = [
        {"point": "vibration_mm_s", "high": 4.5, "band": 0.2, "severity": "critical"},
        {"point": "soc", "device": "hs1", "low": 0.05},
    ]
    folder = Path(str(tmp_path))
    site_file = folder / "site.yaml"
    site_file.write_text(yaml.safe_dump(raw))
    site = load_site(site_file)
    limits = site_limits(site)
    assert len(limits) == len(DEFAULT_LIMITS) + 1
    vibration = next(lim for lim in limits if lim.point == "vibration_mm_s")
    assert (vibration.high, vibration.severity) == (4.5, "critical")  # replaced, same place
    assert limits[-1] == Limit(point="soc", device="hs1", low=0.05)  # added

    for bad, message in (
        ({"point": "speed_rpm", "high": 3.0}, "not in the vocabulary"),
        ({"point": "soc"}, "give a low or a high limit"),
        ({"point": "soc", "low": 0.9, "high": 0.1}, "must lie below"),
        ({"point": "soc", "low": 0.1, "band": -1}, "band"),
    ):
        raw["alarm_limits"] = [bad]
        site_file.write_text(yaml.safe_dump(raw))
        with pytest.raises(SiteFileError, match=message):
            load_site(site_file)
