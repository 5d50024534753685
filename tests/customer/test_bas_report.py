"""The BAS reports: the numbers of a hand-made day in the report, its HTML and its PDF; a
simulated month's report with its findings; files written and bytes returned."""

from __future__ import annotations

import re
import zlib
from datetime import UTC, date, datetime
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from openmeg.core.building_automation import POINTS, BasSystem
from openmeg.core.errors import OpenMegError
from openmeg.customer.bas_report import BasReport, build_report
from openmeg.customer.bas_report_render import report_html, report_pdf, write_report
from openmeg.sim.physics.building import simulate_building
from openmeg.sim.weather import load_weather
from tests.customer import test_efficiency as sim

TZ = "Europe/Rome"
BAS = BasSystem.model_validate(
    {
        "id": "bas-t",
        "premises": "office",
        "device_instance": 9,
        "equipment": [
            {"id": "ahu-1", "kind": "ahu", "name": "Air handler", "rated_kw": 5.0, "area_m2": 100},
            {"id": "hp-1", "kind": "heat_pump", "name": "Heat pump", "rated_kw": 20.0},
            {"id": "lz-1", "kind": "lighting_zone", "name": "Hall", "rated_kw": 2.0},
            {"id": "fa-1", "kind": "fire_alarm", "name": "Fire panel"},
            {"id": "sc-1", "kind": "security", "name": "Intrusion"},
        ],
    }
)


def _day() -> pd.DataFrame:
    """2026-01-12 in Rome (UTC+1), hourly, and the hour after it."""
    index = pd.date_range("2026-01-11T23:00Z", periods=25, freq="1h")
    hour = np.arange(25) % 24
    f = pd.DataFrame(
        {f"{e.id}.{p.name}": 0.0 for e in BAS.equipment for p in POINTS[e.kind]}, index=index
    )
    f["ahu-1.occupied_from_h"], f["ahu-1.occupied_to_h"], f["ahu-1.fan_speed_pct"] = 7.0, 19.0, 80
    fan = (hour >= 6) & (hour < 16)  # 10 h, one of them (06:00) before the schedule
    f["ahu-1.fan_on"], f["ahu-1.fan_kw"] = fan * 1.0, fan * 2.0
    lit = (hour >= 8) & (hour < 16)
    f["lz-1.occupied"], f["lz-1.lights_kw"], f["lz-1.level_pct"] = lit * 1.0, lit * 1.5, lit * 75
    heat, cool = hour < 6, (hour >= 12) & (hour < 14)
    # at the rating point (A7/W35) a COP of 3.5 is as expected
    f["hp-1.water_temp_c"], f["hp-1.outdoor_temp_c"] = 35.0, 7.0
    f["hp-1.mode"] = np.where(heat, 2.0, np.where(cool, 3.0, 1.0))
    f["hp-1.thermal_kw"] = np.where(heat, 35.0, np.where(cool, 20.0, 0.0))
    f["hp-1.electric_kw"] = np.where(heat, 10.0, np.where(cool, 2.0, 0.0))
    f["hp-1.cop"] = np.where(heat, 3.5, np.where(cool, 10.0, 0.0))
    f.loc[(hour >= 10) & (hour < 12), "fa-1.alarm"] = 1.0
    f.loc[hour == 3, "sc-1.intrusion"] = 1.0
    f.iloc[24] = f.iloc[0]  # the next day's first hour is not in the report
    return f


def _supply() -> pd.DataFrame:
    index = pd.date_range("2026-01-11T23:00Z", periods=24, freq="1h")
    hour = np.arange(24)
    return pd.DataFrame(
        {"grid": 5.0, "pv": np.where((hour >= 9) & (hour < 15), 3.0, 0.0), "island": hour < 2},
        index=index,
    )


def _day_report() -> BasReport:
    """The report of 12 January at 0.25 a kWh, with the day's supply."""
    return build_report(
        BAS,
        _day(),
        day=date(2026, 1, 12),
        period="day",
        timezone=TZ,
        price_per_kwh=0.25,
        supply=_supply(),
    )


def test_a_day_in_numbers() -> None:
    r = _day_report()
    energy = {e.equipment: e for e in r.energy}
    assert energy["ahu-1"].electric_kwh == 20.0 and energy["ahu-1"].running_h == 10.0
    assert energy["lz-1"].electric_kwh == 12.0 and energy["lz-1"].running_h == 8.0
    hp = energy["hp-1"]
    assert (hp.electric_kwh, hp.heating_kwh, hp.cooling_kwh, hp.running_h) == (
        64.0,
        210.0,
        40.0,
        8.0,
    )
    assert r.electric_kwh == 96.0
    assert [(s.supply, s.energy_kwh, s.live_h) for s in r.supply] == [
        ("grid", 120.0, 24.0),
        ("pv", 18.0, 6.0),
    ]
    assert r.island_h == 2.0
    assert [(a.equipment, a.point, a.start, a.end) for a in r.alarms] == [
        (
            "sc-1",
            "intrusion",
            datetime(2026, 1, 12, 2, tzinfo=UTC),
            datetime(2026, 1, 12, 3, tzinfo=UTC),
        ),
        (
            "fa-1",
            "alarm",
            datetime(2026, 1, 12, 9, tzinfo=UTC),
            datetime(2026, 1, 12, 11, tzinfo=UTC),
        ),
    ]
    (finding,) = r.findings
    assert (finding.kind, finding.kwh, finding.cost) == ("fan_after_hours", 2.0, 0.5)
    assert (r.waste_kwh, r.waste_cost) == (2.0, 0.5)


def _pdf_text(data: bytes) -> str:
    text = []
    for m in re.finditer(rb"stream\r?\n(.*?)\r?\nendstream", data, re.S):
        try:
            content = zlib.decompress(m.group(1))
        except zlib.error:
            continue
        text += [t.decode("latin-1") for t in re.findall(rb"\((.*?)\) Tj", content)]
    return "\n".join(text)


def test_html_and_pdf_carry_the_numbers(tmp_path: Path) -> None:
    r = _day_report()
    page = write_report(r, tmp_path / "day.html").decode()
    assert (tmp_path / "day.html").read_text() == page == report_html(r).decode()
    assert "Daily BAS report bas-t (office) 2026-01-12" in page
    for row in (
        "<td>Air handler</td><td>ahu</td><td>20.00</td>",
        "<td>Total</td><td></td><td>96.00</td>",
        "<td>grid</td><td>120.00</td><td>24.00</td>",
        "<td>in island</td><td></td><td>2.00</td>",
        "<td>fa-1</td><td>alarm</td><td>2026-01-12 09:00</td><td>2026-01-12 11:00</td>",
        "<td>2.00</td><td>0.50</td>",
    ):
        assert row in page
    data = write_report(r, tmp_path / "day.pdf")
    assert data.startswith(b"%PDF") and (tmp_path / "day.pdf").read_bytes() == data
    text = _pdf_text(data)
    for cell in (
        "Daily BAS report bas-t \\(office\\) 2026-01-12",
        "Heat pump",
        "64.00",
        "210.00",
        "40.00",
        "96.00",
        "120.00",
        "18.00",
        "2026-01-12 09:00",
        "fan after hours",
        "0.50",
    ):
        assert cell in text


def test_a_simulated_month_with_its_faults() -> None:
    bas = sim.SITE.bas[0]
    faults = sim._faults(bas, 1)
    index = pd.date_range("2025-12-31T23:00Z", "2026-01-31T23:00Z", freq="15min", inclusive="left")
    temp = load_weather(sim.WEATHER, index).temp_air_c
    run = simulate_building(bas, index, temp, timezone=TZ, faults=faults)
    r = build_report(
        bas, run.points, day=date(2026, 1, 20), period="month", timezone=TZ, price_per_kwh=0.2
    )
    assert r.start == datetime(2025, 12, 31, 23, tzinfo=UTC)
    assert r.end == datetime(2026, 1, 31, 23, tzinfo=UTC)
    energy = {e.equipment: e.electric_kwh for e in r.energy}
    assert energy["hp-1"] == pytest.approx(run.points["hp-1.electric_kw"].sum() * 0.25)
    found = {f.kind: f for f in r.findings}
    assert set(found) == {"cop_drift", "fan_after_hours", "lights_empty_zone"}
    for fault, truth in zip(faults, run.waste_kwh, strict=True):
        assert abs(found[fault.kind].kwh - truth) <= 0.05 * truth
    assert r.waste_cost == pytest.approx(0.2 * r.waste_kwh)
    assert f"{r.waste_kwh:,.2f}" in report_html(r).decode()
    assert f"{r.waste_kwh:,.2f}" in _pdf_text(report_pdf(r))


def test_bad_requests_are_refused(tmp_path: Path) -> None:
    args = {"timezone": TZ, "price_per_kwh": 0.25}
    with pytest.raises(OpenMegError, match="no day"):
        build_report(BAS, _day(), day=date(2026, 3, 1), period="day", **args)  # type: ignore[arg-type]
    with pytest.raises(OpenMegError, match="a day or a month"):
        build_report(BAS, _day(), day=date(2026, 1, 12), period="week", **args)  # type: ignore[arg-type]
    bad = _supply()
    bad.iloc[3, 0] = np.inf
    with pytest.raises(OpenMegError, match="supply 'grid'"):
        build_report(BAS, _day(), day=date(2026, 1, 12), period="day", supply=bad, **args)  # type: ignore[arg-type]
    r = build_report(BAS, _day(), day=date(2026, 1, 12), period="day", **args)  # type: ignore[arg-type]
    with pytest.raises(OpenMegError, match=r"\.html or \.pdf"):
        write_report(r, tmp_path / "day.txt")
    assert not (tmp_path / "day.txt").exists()


def test_an_email_ready_report(tmp_path: Path) -> None:
    from email import message_from_bytes, policy

    from openmeg.customer.bas_report_mail import report_email, write_email

    r = build_report(
        BAS, _day(), day=date(2026, 1, 12), period="day", timezone=TZ, price_per_kwh=0.25
    )
    data = write_email(r, tmp_path / "day.eml", sender="bas@example.org", to=["fm@example.org"])
    assert (tmp_path / "day.eml").read_bytes() == data
    msg = message_from_bytes(data, policy=policy.default)
    assert msg["Subject"] == "Daily BAS report bas-t (office) 2026-01-12"
    assert msg["To"] == "fm@example.org"
    text = msg.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    assert "BAS equipment electricity: 96.00 kWh" in text
    assert "Efficiency findings: 1, costing 2.00 kWh and EUR 0.50" in text
    page = msg.get_body(("html",)).get_content()  # type: ignore[union-attr]
    assert "<td>Total</td><td></td><td>96.00</td>" in page
    (pdf,) = list(msg.iter_attachments())
    assert pdf.get_filename() == "bas-bas-t-2026-01-12.pdf"
    assert "210.00" in _pdf_text(pdf.get_content())
    for bad in ("fm@example.org\r\nBcc: x@evil.test", "nobody", ""):
        with pytest.raises(OpenMegError, match="e-mail address"):
            report_email(r, sender="bas@example.org", to=[bad])
    with pytest.raises(OpenMegError, match="recipient"):
        report_email(r, sender="bas@example.org", to=[])
