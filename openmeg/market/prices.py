"""Real-time purchase and sale prices per interval: from a CSV file (checked: no gaps, no
repeated intervals, numbers only) or from a seeded synthetic generator with a daily and a
seasonal shape, volatility, and negative midday prices when the sun is strong."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from openmeg.core.errors import OpenMegError


class PriceFileError(OpenMegError):
    """A price file was refused; nothing of it is used."""


def synthetic_prices(
    start: pd.Timestamp,
    days: int,
    *,
    interval_min: int = 15,
    seed: int = 0,
    timezone: str = "UTC",
    base: float = 0.12,
    spread: float = 0.03,
) -> pd.DataFrame:
    """``interval_start, buy, sell`` (currency per kWh) for ``days`` from ``start``."""
    idx = pd.date_range(
        start.tz_convert("UTC"), periods=days * 24 * 60 // interval_min, freq=f"{interval_min}min"
    )
    local = idx.tz_convert(timezone)
    hour = local.hour.to_numpy() + local.minute.to_numpy() / 60.0
    doy = local.dayofyear.to_numpy()
    rng = np.random.default_rng(seed)
    evening = 0.08 * np.exp(-((hour - 19.0) ** 2) / 4.0)  # the evening peak
    morning = 0.03 * np.exp(-((hour - 8.0) ** 2) / 2.0)
    summer = 0.5 + 0.5 * np.cos(2 * np.pi * (doy - 172) / 365.0)  # 1 at midsummer
    solar_dip = 0.15 * summer * np.exp(-((hour - 13.0) ** 2) / 6.0)  # can go below zero
    winter = 0.03 * (1 - summer)
    noise = rng.normal(0.0, 0.015, idx.size)
    buy = np.round(base + evening + morning + winter - solar_dip + noise, 5)
    sell = np.round(buy - spread, 5)
    return pd.DataFrame({"interval_start": idx, "buy": buy, "sell": sell})


def load_price_csv(path: Path, *, interval_min: int = 15) -> pd.DataFrame:
    """Read ``interval_start, buy, sell``; ``PriceFileError`` lists every problem."""
    try:
        raw = pd.read_csv(path, dtype=str)
    except (OSError, pd.errors.ParserError, pd.errors.EmptyDataError) as err:
        raise PriceFileError(f"{path.name}: cannot be read: {err}") from err
    missing = {"interval_start", "buy", "sell"} - set(raw.columns)
    if missing:
        raise PriceFileError(f"{path.name}: columns missing: {', '.join(sorted(missing))}")
    problems = []
    starts = pd.to_datetime(raw["interval_start"], utc=True, errors="coerce")
    for col in ("buy", "sell"):
        values = pd.to_numeric(raw[col], errors="coerce")
        for i in np.flatnonzero(values.isna().to_numpy()):
            problems.append(f"row {i + 1}: {col} {raw[col].iloc[i]!r} is not a number")
    for i in np.flatnonzero(starts.isna().to_numpy()):
        problems.append(
            f"row {i + 1}: interval_start {raw['interval_start'].iloc[i]!r} is not a time"
        )
    ok = starts.dropna().sort_values()
    for t in ok[ok.duplicated()].unique():
        problems.append(f"interval {t.isoformat()} appears more than once")
    step = pd.Timedelta(minutes=interval_min)
    unique = pd.DatetimeIndex(ok.unique())
    if len(unique) > 1:
        full = pd.date_range(unique[0], unique[-1], freq=step)
        for t in full.difference(unique)[:10]:
            problems.append(f"no price for the interval starting {t.isoformat()} (a gap)")
    if problems:
        raise PriceFileError(f"{path.name}: " + "; ".join(problems))
    out = pd.DataFrame(
        {
            "interval_start": starts,
            "buy": pd.to_numeric(raw["buy"]),
            "sell": pd.to_numeric(raw["sell"]),
        }
    )
    return out.sort_values("interval_start", ignore_index=True)
