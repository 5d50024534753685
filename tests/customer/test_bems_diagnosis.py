"""The efficiency diagnosis and the reports of a premises from the series its energy
management polled over BACnet from the simulated building plant."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from openmeg.core.audit import AuditLog
from openmeg.core.bas_scenario import BasFault
from openmeg.core.bus import InProcessBus
from openmeg.core.clock import SimClock
from openmeg.core.errors import OpenMegError
from openmeg.core.messages import PriceChange
from openmeg.core.site import load_site
from openmeg.core.store import Store
from openmeg.customer.bems import Bems
from openmeg.customer.bems_diagnosis import findings_of, report_of
from openmeg.customer.price_book import PriceBook
from openmeg.protocols.bacnet import BacnetServer
from openmeg.protocols.bacnet_client import BacnetClient
from openmeg.sim.physics.building import BuildingPlant, simulate_building

SITE = load_site("demo")
BAS = SITE.bas[0]
TZ = SITE.site.timezone
DAY0 = datetime(2026, 1, 13, 23, tzinfo=UTC)  # 14 January, 00:00 in Rome
STEP_S = 900.0
FAN = BasFault(equipment="ahu-1", kind="fan_after_hours", magnitude=0.5, start=DAY0)


def outdoor(t: datetime) -> float:
    return 4.0 + 3.0 * np.sin((t.hour - 9) / 24 * 2 * np.pi)


@pytest.fixture
def store(sqlite_store: Store) -> Store:
    return sqlite_store


@pytest.fixture
def book(store: Store) -> PriceBook:
    b = PriceBook(store, "rome")
    b.record([PriceChange(effective_from=DAY0 - timedelta(days=1), buy=0.25, sell=0.08)], DAY0)
    return b


async def polled_day(plant: BuildingPlant, store: Store) -> tuple[Bems, BacnetServer]:
    server = BacnetServer(BAS, values=plant.read, command=plant.command, port=0)
    await server.start()
    clock = SimClock(DAY0)
    bems = Bems(
        "rome",
        BAS,
        client=BacnetClient(BAS, port=server.port),
        bus=InProcessBus(),
        clock=clock,
        audit=AuditLog(store, b"k" * 32),
        timezone=TZ,
        poll_every_s=STEP_S,
    )
    await bems.start()
    for _ in range(96):
        t = clock.now()
        plant.step(t, STEP_S, outdoor(t))
        await bems.poll()
        clock.advance(STEP_S)
    return bems, server


@pytest.fixture
async def faulty(store: Store) -> AsyncIterator[Bems]:
    plant = BuildingPlant(BAS, timezone=TZ, faults=[FAN])
    bems, server = await polled_day(plant, store)
    try:
        yield bems
    finally:
        await bems.stop()
        await server.stop()


async def test_a_fan_left_on_after_hours_is_found_within_5_percent_of_the_truth(
    faulty: Bems, book: PriceBook
) -> None:
    index = pd.date_range(DAY0, periods=96, freq="15min")
    temps = [outdoor(t.to_pydatetime()) for t in index]
    truth = simulate_building(BAS, index, temps, timezone=TZ, faults=[FAN]).waste_kwh[0]
    assert truth > 5.0
    frame = faulty.series.frame(STEP_S)
    assert frame.shape == (96, 29) and frame.index[0] == pd.Timestamp(DAY0)
    (found,) = [f for f in findings_of(faulty, book) if f.kind == "fan_after_hours"]
    assert found.equipment == "ahu-1"
    assert abs(found.kwh - truth) <= 0.05 * truth, (found.kwh, truth)
    assert found.cost == pytest.approx(0.25 * found.kwh, rel=1e-9)


async def test_the_daily_report_in_html_and_pdf_written_ready_to_mail(
    faulty: Bems, book: PriceBook, tmp_path: Path
) -> None:
    html = report_of(faulty, book, day=date(2026, 1, 14), period="day", fmt="html")
    text = html.decode()
    assert "Daily BAS report bas-office (office) 2026-01-14" in text
    (fan,) = [f for f in findings_of(faulty, book) if f.kind == "fan_after_hours"]
    assert "<td>ahu-1</td>" in text and f"<td>{fan.kwh:,.2f}</td>" in text
    assert f"<td>{fan.cost:,.2f}</td>" in text
    pdf = report_of(faulty, book, day=date(2026, 1, 14), period="day", fmt="pdf")
    assert pdf.startswith(b"%PDF-")
    out = tmp_path / "office-2026-01-14.pdf"
    written = report_of(faulty, book, day=date(2026, 1, 14), period="day", fmt="pdf", out=out)
    assert out.read_bytes() == written and written.startswith(b"%PDF-")


async def test_no_finding_and_no_report_without_two_intervals(
    store: Store, book: PriceBook
) -> None:
    plant = BuildingPlant(BAS, timezone=TZ)
    server = BacnetServer(BAS, values=plant.read, command=plant.command, port=0)
    async with server:
        bems = Bems(
            "rome",
            BAS,
            client=BacnetClient(BAS, port=server.port),
            bus=InProcessBus(),
            clock=SimClock(DAY0),
            audit=AuditLog(store, b"k" * 32),
            timezone=TZ,
        )
        await bems.start()
        try:
            with pytest.raises(OpenMegError, match="0 interval"):
                findings_of(bems, book)
            await bems.poll()
            with pytest.raises(OpenMegError, match="1 interval"):
                report_of(bems, book, day=date(2026, 1, 14), period="day", fmt="html")
        finally:
            await bems.stop()
