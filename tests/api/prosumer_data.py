"""A prosumer's day of trades, known to the cent: what the prosumer's app's tests reckon."""

from __future__ import annotations

from datetime import datetime

import pandas as pd

from openmeg.core.messages import PriceChange
from tests.api.harness import START, Harness

# 2026-05-31 in Rome (CEST, UTC+2): 10:00-11:00 local is 08:00-09:00 UTC
DAY = "start=2026-05-30T22:00Z&end=2026-05-31T22:00Z"


def yesterdays_trades(h: Harness) -> None:
    """m-h01 on 2026-05-31: 1 kWh exported in each interval of 10-11 h local at a sale price of
    0.20, 0.5 kWh imported in each of 11-12 h at a purchase price of 0.10."""
    at = pd.Timestamp("2026-05-31T08:00Z")
    h.api.services.book.record(
        [
            PriceChange(effective_from=at.to_pydatetime(), buy=0.30, sell=0.20),
            PriceChange(
                effective_from=(at + pd.Timedelta(hours=1)).to_pydatetime(), buy=0.10, sell=0.05
            ),
        ],
        received_at=datetime(2026, 5, 30, tzinfo=START.tzinfo),
    )
    idx = pd.date_range(at, periods=8, freq="15min")
    rows = []
    for i, t in enumerate(idx):
        rows.append(("import", t, 0.0 if i < 4 else 0.5))
        rows.append(("export", t, 1.0 if i < 4 else 0.0))
    frame = pd.DataFrame(
        {
            "meter": "m-h01",
            "channel": [r[0] for r in rows],
            "interval_start": [r[1] for r in rows],
            "value_kwh": [r[2] for r in rows],
        }
    )
    h.meg.readings.ingest(frame, meters={"m-h01"}, source="test", received_at=START)
