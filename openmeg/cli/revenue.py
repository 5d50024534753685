"""``openmeg revenue``: the energy revenue calculating system."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import typer

from openmeg.cli.common import SITE, STORE, fail, open_site_store, period

if TYPE_CHECKING:
    import pandas as pd


def revenue_cmd(
    start: str = typer.Option(..., "--from", help="first instant (ISO 8601; UTC if no zone)"),
    end: str = typer.Option(..., "--to", help="end instant, excluded"),
    device: list[str] = typer.Option(
        [], help="a device (repeatable; default: every device with a meter of its own)"
    ),
    by: str = typer.Option("day", help="interval, hour, day or month"),
    arrangement: str = typer.Option(
        "central", help="central (one calculator) or per-device (one calculator each)"
    ),
    csv: Path | None = typer.Option(None, help="also write the table to this CSV file"),
    site: str = SITE,
    store: str = STORE,
) -> None:
    """What each power device earned: energy out x sale price - energy in x purchase price."""
    from openmeg.customer.revenue_calc import (
        ARRANGEMENTS,
        PERIODS,
        revenue_devices,
        revenue_table,
    )

    if by not in PERIODS:
        fail(f"--by must be one of {', '.join(PERIODS)}")
    if arrangement not in ARRANGEMENTS:
        fail("--arrangement must be central or per-device")
    from openmeg.operation.mdms.store import MeterReadings

    the_site, db = open_site_store(site, store)
    try:
        known = revenue_devices(the_site)
        unknown = [d for d in device if d not in known]
        if unknown:
            fail(f"no revenue meter on {', '.join(unknown)}; devices with one: {', '.join(known)}")
        t0, t1 = period(start, end)
        if MeterReadings(db).long_frame(device or known, t0, t1).empty:
            fail(
                f"no readings of the devices' revenue meters from {t0:%Y-%m-%d %H:%M} to "
                f"{t1:%Y-%m-%d %H:%M} UTC: run the MEG through that period first (openmeg run "
                "--start 2026-06-01 ...) or import them (openmeg meters import FILE)",
                code=1,
            )
        table = revenue_table(the_site, db, device, t0, t1, arrangement=arrangement)
    finally:
        db.close()
    frame = table.by_period(by, the_site.site.timezone)
    totals = table.totals()
    for d, row in totals.iterrows():
        print(f"{d}: out {row.out_kwh:.3f} kWh, in {row.in_kwh:.3f} kWh, revenue {row.revenue:.2f}")
    print(f"all devices: {totals.revenue.sum():.2f} (in the market prices' currency)")
    print(period_rows(frame, by, the_site.site.timezone))
    if table.unpriced_intervals:
        print(f"{table.unpriced_intervals} intervals without a market price count nothing")
    if csv is not None:
        frame.round(6).to_csv(csv)
        print(f"wrote {csv}")


FORMATS = {
    "interval": "%Y-%m-%d %H:%M",
    "hour": "%Y-%m-%d %H:%M",
    "day": "%Y-%m-%d",
    "month": "%Y-%m",
}


def period_rows(frame: pd.DataFrame, by: str, timezone: str) -> str:
    """The revenue of each ``by`` period (rows, local starts) and device (columns), with the
    periods' total, rounded to the cent: the table ``--csv`` writes unrounded."""
    import pandas as pd

    shown = frame.copy()
    shown.index = pd.Index([p.strftime(FORMATS[by]) for p in frame.index], name=by)
    shown["all devices"] = frame.sum(axis=1).to_numpy()
    head = f"revenue by {by} (local starts, {timezone}):"
    table: str = shown.to_string(float_format=_cents)
    return head + "\n" + table


def _cents(x: float) -> str:
    """``x`` to the cent as the totals print it, without a ``-0.00``."""
    out = f"{x:.2f}"
    return "0.00" if out == "-0.00" else out
