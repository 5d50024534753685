"""What customers are billed for, from validated readings, read for all their meters at once:
each meter's import and export per interval over the period, less its sub-meters' when it has
any (an aggregate building's main meter: the association is billed for the common part only,
see ``common_part``), and the version of every meter channel it came from (``bill_freeze``)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from openmeg.core.site import Site
from openmeg.core.store import Store
from openmeg.operation.mdms.store import MeterReadings
from openmeg.operation.mdms.validated import ValidatedReadings
from openmeg.provider.bill_freeze import readings_versions
from openmeg.provider.common_part import common_part


@dataclass(frozen=True, kw_only=True)
class BilledEnergy:
    """What a customer is billed for: import and export per interval [kWh] over the whole
    period (UTC index), and the version of every meter channel it came from."""

    import_kwh: pd.Series
    export_kwh: pd.Series
    readings: dict[str, Any]


def validated_grid(
    v: ValidatedReadings, meters: list[str], channel: str, index: pd.DatetimeIndex
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The validated series of ``meters`` over ``index`` (UTC starts): kWh float64, version
    int64 (0: the raw reading) and quality code int8 (into ``QUALITY``), [meters x intervals];
    NaN, 0 and 0 (missing) where there is nothing."""
    n = len(index)
    start, end = index[0].to_pydatetime(), (index[-1] + pd.Timedelta(minutes=15)).to_pydatetime()
    values, quality = v.arrays(meters, channel, start, end)
    found = v.versions(meters, channel, index[0], n)
    version = np.zeros((len(meters), n), np.int64)
    version[found.row, found.col] = found.version
    return values, version, quality.astype(np.int8)


def billed_energies(
    site: Site, store: Store, meters: list[str], period: str, start: pd.Timestamp, end: pd.Timestamp
) -> dict[str, BilledEnergy | str]:
    """Each meter's billed energy, or what is missing and what to do (a message)."""
    v = ValidatedReadings(store, site.site.id)
    idx = pd.date_range(
        start.tz_convert("UTC"), end.tz_convert("UTC"), freq="15min", inclusive="left"
    )
    children: dict[str, list[str]] = {}
    for sub in site.meters:
        if sub.parent is not None:
            children.setdefault(sub.parent, []).append(sub.id)
    subs = {m: children.get(m, []) for m in meters}
    every = list(dict.fromkeys(x for m in meters for x in [m, *subs[m]]))
    row = {m: i for i, m in enumerate(every)}
    grids = {c: validated_grid(v, every, c, idx) for c in ("import", "export")}
    versions = {c: readings_versions(*grids[c]) for c in grids}
    imp, exp = grids["import"][0], np.nan_to_num(grids["export"][0], nan=0.0)
    unvalidated = _unvalidated_days(v, every, start, end)
    out: dict[str, BilledEnergy | str] = {}
    for m in meters:
        rows = [row[x] for x in [m, *subs[m]]]
        problem = None
        for x in [m, *subs[m]]:
            gap = np.isnan(imp[row[x]])
            if gap.any():
                problem = _missing(store, x, m, period, idx[gap][0], start, end)
                break
        else:
            day = next(((x, unvalidated[x]) for x in [m, *subs[m]] if x in unvalidated), None)
            problem = None if day is None else _unvalidated(day[0], m, period, day[1])
        if problem is not None:
            out[m] = problem
            continue
        i, e = imp[rows[0]], exp[rows[0]]
        if subs[m]:
            i, e = common_part(i, e, imp[rows[1:]], exp[rows[1:]])
        out[m] = BilledEnergy(
            import_kwh=pd.Series(i, index=idx),
            export_kwh=pd.Series(e, index=idx),
            readings={
                f"{x}/{c}": versions[c][row[x]] for x in [m, *subs[m]] for c in ("import", "export")
            },
        )
    return out


def _unvalidated_days(
    v: ValidatedReadings, meters: list[str], start: pd.Timestamp, end: pd.Timestamp
) -> dict[str, str]:
    """The first local day of the period that VEE has not validated, per meter (import), where
    the MDMS keeps a VEE status per (meter, channel, local day)."""
    days = list(pd.date_range(start, end, freq="D", inclusive="left").strftime("%Y-%m-%d"))
    done = v.status(meters, "import", days)
    return {
        m: days[int(np.argmax(done[i] < 0))] for i, m in enumerate(meters) if (done[i] < 0).any()
    }


def _of(meter: str, billed: str) -> str:
    if meter == billed:
        return ""
    return f"; {meter} is a sub-meter of {billed}, which is billed for its common part"


def _unvalidated(meter: str, billed: str, period: str, day: str) -> str:
    return (
        f"VEE has not validated {meter} import on {day}: "
        f"run VEE first (openmeg vee run --period {period}){_of(meter, billed)}"
    )


def _missing(
    store: Store,
    meter: str,
    billed: str,
    period: str,
    first: pd.Timestamp,
    start: pd.Timestamp,
    end: pd.Timestamp,
) -> str:
    raw = MeterReadings(store).series(meter, "import", start.to_pydatetime(), end.to_pydatetime())
    if raw.empty:
        return (
            f"no readings for that period: import or run first (meter {meter}, {period})"
            f"{_of(meter, billed)}"
        )
    return (
        f"no validated import reading of {meter} for {first.isoformat()}: "
        f"run VEE first (openmeg vee run --period {period}){_of(meter, billed)}"
    )
