"""The efficiency diagnosis and the automatic reports of a premises' BAS from the series its
energy management keeps (``customer.efficiency``, ``customer.bas_report``), priced at the
market's purchase prices."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Literal

import pandas as pd

from openmeg.core.errors import OpenMegError
from openmeg.customer.bas_report import Period, build_report
from openmeg.customer.bas_report_render import report_html, report_pdf, write_report
from openmeg.customer.bems import Bems
from openmeg.customer.efficiency import Finding, diagnose
from openmeg.customer.price_book import PriceBook

Format = Literal["html", "pdf"]


def points_of(bems: Bems) -> pd.DataFrame:
    """The BAS points' interval series kept so far; ``OpenMegError`` if under two intervals."""
    frame = bems.series.frame(bems.poll_every_s)
    if len(frame) < 2:
        raise OpenMegError(
            f"the BAS {bems.bas.id} has {len(frame)} interval(s) of points so far: "
            "a diagnosis needs two or more, try again after the next poll"
        )
    return frame


def purchase_prices(book: PriceBook, index: pd.DatetimeIndex, interval_s: float) -> pd.Series:
    """The purchase price [per kWh] of each interval of ``index``; an interval before the first
    known price takes that first price; ``OpenMegError`` if no price is known at all."""
    prices = book.interval_prices(index, interval_s)
    if not prices.priced.any():
        raise OpenMegError("no market price is known for the period: wait for the prices")
    series = pd.Series(prices.buy, index=index).where(prices.priced)
    return series.bfill()


def findings_of(bems: Bems, book: PriceBook) -> list[Finding]:
    """The waste found in the BAS's series so far, largest first, priced at the market."""
    frame = points_of(bems)
    prices = purchase_prices(book, pd.DatetimeIndex(frame.index), bems.poll_every_s)
    return diagnose(bems.bas, frame, timezone=bems.timezone, price_per_kwh=prices)


def report_of(
    bems: Bems,
    book: PriceBook,
    *,
    day: date,
    period: Period,
    fmt: Format,
    currency: str = "EUR",
    out: Path | None = None,
) -> bytes:
    """The BAS's report of the local ``day`` (or its month) as HTML or PDF bytes; also written
    to ``out`` (a file ready to e-mail) if given."""
    frame = points_of(bems)
    prices = purchase_prices(book, pd.DatetimeIndex(frame.index), bems.poll_every_s)
    report = build_report(
        bems.bas,
        frame,
        day=day,
        period=period,
        timezone=bems.timezone,
        price_per_kwh=prices,
        currency=currency,
    )
    if out is not None:
        return write_report(report, out)
    return report_pdf(report) if fmt == "pdf" else report_html(report)
