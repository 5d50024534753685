"""The market price server (market domain): real-time purchase and sale prices per interval and
the schedule of price changes ahead, over HTTP; also an authorised time source (``/time``)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pandas as pd
from fastapi import FastAPI, HTTPException, Query

from openmeg.core.clock import Clock
from openmeg.market.feed import schedule_ahead

MAX_ROWS = 10_000


def price_app(prices: pd.DataFrame, clock: Clock, *, interval_min: int = 15) -> FastAPI:
    """An app serving ``prices`` (``interval_start, buy, sell``; UTC starts)."""
    table = prices.sort_values("interval_start").set_index("interval_start")
    step = pd.Timedelta(minutes=interval_min)
    app = FastAPI(title="openmeg market price server", version="1")

    def rows(frame: pd.DataFrame) -> list[dict[str, Any]]:
        return [
            {"interval_start": t.isoformat(), "buy": float(r.buy), "sell": float(r.sell)}
            for t, r in frame.iterrows()
        ]

    @app.get("/time")
    def authorised_time() -> dict[str, Any]:
        now = clock.now()
        return {"utc": now.isoformat(), "epoch_s": now.timestamp()}

    @app.get("/prices")
    def prices_between(
        start: datetime = Query(...), end: datetime = Query(...)
    ) -> list[dict[str, Any]]:
        if start.tzinfo is None or end.tzinfo is None:
            raise HTTPException(422, "give start and end with a time zone, e.g. 2026-10-01T00:00Z")
        if end <= start:
            raise HTTPException(422, "end must come after start")
        frame = table[(table.index >= pd.Timestamp(start)) & (table.index < pd.Timestamp(end))]
        if len(frame) > MAX_ROWS:
            raise HTTPException(422, f"at most {MAX_ROWS} intervals per request")
        return rows(frame)

    @app.get("/prices/current")
    def current() -> dict[str, Any]:
        now = pd.Timestamp(clock.now())
        frame = table[(table.index <= now) & (table.index + step > now)]
        if frame.empty:
            raise HTTPException(404, f"no price for {now.isoformat()}")
        return rows(frame)[0]

    @app.get("/schedule")
    def schedule(hours: int = Query(24, ge=1, le=168)) -> list[dict[str, Any]]:
        """The price changes ahead: each interval whose prices differ from the one before."""
        return [
            {"interval_start": c.effective_from.isoformat(), "buy": c.buy, "sell": c.sell}
            for c in schedule_ahead(prices, clock.now(), hours=hours, interval_min=interval_min)
        ]

    return app
