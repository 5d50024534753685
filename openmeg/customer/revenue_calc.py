"""The energy revenue calculating system (Y.2071 Appendix III.2): what each power device earns,
from its own meter's validated 15-minute energy out and in (the MDMS's raw readings overlaid by
VEE's estimates and edits) and the market prices the price synchronising unit stored, each
interval at its time-weighted prices.

Two arrangements give the same figures: ``DeviceRevenueCalculator``, one per device, reading
that device's meter alone; ``CentralRevenueCalculator``, one for all devices, reading them in
one query and computing them as one matrix.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import numpy as np
import numpy.typing as npt
import pandas as pd

from openmeg.core.site import Site
from openmeg.core.store import Store, as_utc
from openmeg.customer.price_book import PriceBook
from openmeg.customer.revenue import revenue
from openmeg.operation.mdms.store import INTERVAL
from openmeg.operation.mdms.validated import IntervalSeries, ValidatedReadings

FloatArray = npt.NDArray[np.float64]
REVENUE_KINDS = ("pv", "wind", "chp", "fuel_cell", "battery", "ev_charger")
"""Power devices with a meter of their own whose revenue is reckoned."""
PERIODS = {"interval": "15min", "hour": "h", "day": "D", "month": "MS"}


def revenue_devices(site: Site) -> list[str]:
    return [d.id for d in site.devices if d.kind in REVENUE_KINDS]


@dataclass(frozen=True, kw_only=True)
class RevenueTable:
    """Devices x intervals: energy out and in (kWh), the interval prices, and revenue."""

    devices: list[str]
    interval_start: pd.DatetimeIndex
    out_kwh: FloatArray
    in_kwh: FloatArray
    sell: FloatArray
    buy: FloatArray
    priced: npt.NDArray[np.bool_]

    @property
    def revenue(self) -> FloatArray:
        """Energy out x the sale price minus energy in x the purchase price, per interval;
        0 where no price is known (see ``unpriced_intervals``)."""
        return revenue(self.out_kwh, self.in_kwh, self.sell, self.buy)

    @property
    def unpriced_intervals(self) -> int:
        return int((~self.priced).sum())

    def by_period(self, period: str, timezone: str) -> pd.DataFrame:
        """Revenue per device (columns) and period (rows: local starts of each interval,
        hour, day or month)."""
        if period not in PERIODS:
            raise ValueError(f"period must be one of {', '.join(PERIODS)}, got {period!r}")
        frame = pd.DataFrame(
            self.revenue.T, index=self.interval_start.tz_convert(timezone), columns=self.devices
        )
        if period == "interval":
            return frame
        local = frame.index.tz_localize(None)  # local wall time: days and months as lived
        return frame.groupby(local.to_period(PERIODS[period].replace("MS", "M"))).sum()

    def totals(self) -> pd.DataFrame:
        return pd.DataFrame(
            {
                "out_kwh": self.out_kwh.sum(axis=1),
                "in_kwh": self.in_kwh.sum(axis=1),
                "revenue": self.revenue.sum(axis=1),
            },
            index=pd.Index(self.devices, name="device"),
        )


def _intervals(start: datetime, end: datetime) -> pd.DatetimeIndex:
    if end <= start:
        raise ValueError("the period must end after it starts")
    return pd.date_range(as_utc(start), as_utc(end), freq=INTERVAL, inclusive="left")


class DeviceRevenueCalculator:
    """The revenue calculator of one device."""

    def __init__(self, device: str, readings: IntervalSeries, book: PriceBook) -> None:
        self.device, self.readings, self.book = device, readings, book

    def table(self, start: datetime, end: datetime) -> RevenueTable:
        idx = _intervals(start, end)
        out = self.readings.series(self.device, "export", start, end).reindex(idx)
        inn = self.readings.series(self.device, "import", start, end).reindex(idx)
        p = self.book.interval_prices(idx, INTERVAL.total_seconds())
        sell, buy, priced = p.sell, p.buy, p.priced
        return RevenueTable(
            devices=[self.device],
            interval_start=idx,
            out_kwh=np.where(priced, out.fillna(0.0).to_numpy(), 0.0)[None, :],
            in_kwh=np.where(priced, inn.fillna(0.0).to_numpy(), 0.0)[None, :],
            sell=sell,
            buy=buy,
            priced=priced,
        )


class CentralRevenueCalculator:
    """One calculator for all devices."""

    def __init__(self, devices: list[str], readings: IntervalSeries, book: PriceBook) -> None:
        self.devices, self.readings, self.book = devices, readings, book

    def table(self, start: datetime, end: datetime) -> RevenueTable:
        idx = _intervals(start, end)
        p = self.book.interval_prices(idx, INTERVAL.total_seconds())
        sell, buy, priced = p.sell, p.buy, p.priced
        energy = {
            channel: self.readings.matrix(self.devices, channel, start, end)
            .reindex(index=idx, columns=self.devices)
            .fillna(0.0)
            .to_numpy()
            .T
            for channel in ("export", "import")
        }
        return RevenueTable(
            devices=list(self.devices),
            interval_start=idx,
            out_kwh=np.where(priced, energy["export"], 0.0),
            in_kwh=np.where(priced, energy["import"], 0.0),
            sell=sell,
            buy=buy,
            priced=priced,
        )


def per_device_table(
    devices: list[str], readings: IntervalSeries, book: PriceBook, start: datetime, end: datetime
) -> RevenueTable:
    """All devices, each from its own calculator, gathered into one table."""
    tables = [DeviceRevenueCalculator(d, readings, book).table(start, end) for d in devices]
    first = tables[0]
    return RevenueTable(
        devices=list(devices),
        interval_start=first.interval_start,
        out_kwh=np.vstack([t.out_kwh for t in tables]),
        in_kwh=np.vstack([t.in_kwh for t in tables]),
        sell=first.sell,
        buy=first.buy,
        priced=first.priced,
    )


ARRANGEMENTS = ("central", "per-device")
"""One calculator for all devices, or one calculator each."""


def revenue_table(
    site: Site,
    store: Store,
    devices: list[str],
    start: datetime,
    end: datetime,
    *,
    arrangement: str = "central",
) -> RevenueTable:
    """The revenue of ``devices`` (every device with a revenue meter if none) over
    ``[start, end)``, from one central calculator or one per device (``ARRANGEMENTS``)."""
    if arrangement not in ARRANGEMENTS:
        raise ValueError(f"arrangement {arrangement!r}: one of {', '.join(ARRANGEMENTS)}")
    chosen = list(devices) or revenue_devices(site)
    readings, book = ValidatedReadings(store, site.site.id), PriceBook(store, site.site.id)
    if arrangement == "central":
        return CentralRevenueCalculator(chosen, readings, book).table(start, end)
    return per_device_table(chosen, readings, book, start, end)
