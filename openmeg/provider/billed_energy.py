"""What customers are billed for, from validated readings, read for all their meters at once:
each meter's import and export per interval over the period, less its sub-meters' when it has
any (an aggregate building's main meter: the association is billed for the common part only,
see ``common_part``), and the version of every meter channel it came from (``bill_freeze``)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import sqlalchemy as sa

from openmeg.core.site import Site
from openmeg.core.store import Store
from openmeg.operation.mdms.store import MeterReadings
from openmeg.operation.mdms.validated import ValidatedReadings, vee_status
from openmeg.provider.bill_freeze import readings_versions
from openmeg.provider.common_part import common_part


@dataclass(frozen=True, kw_only=True)
class BilledEnergy:
    """What a customer is billed for: import and export per interval [kWh] over the whole
    period (``index``: UTC starts; ``import_values``, ``export_values``: float64
    [n_intervals]), and the version of every meter channel it came from."""

    index: pd.DatetimeIndex
    import_values: np.ndarray
    export_values: np.ndarray
    readings: dict[str, Any]

    @property
    def import_kwh(self) -> pd.Series:
        return pd.Series(self.import_values, index=self.index)

    @property
    def export_kwh(self) -> pd.Series:
        return pd.Series(self.export_values, index=self.index)


def validated_grid(
    v: ValidatedReadings, meters: list[str], channel: str, index: pd.DatetimeIndex
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The validated series of ``meters`` over ``index`` (UTC starts): kWh float64, version
    int64 (0: the raw reading) and quality code int8 (into ``QUALITY``), [meters x intervals];
    NaN, 0 and 0 (missing) where there is nothing."""
    n = len(index)
    start, end = index[0].to_pydatetime(), (index[-1] + pd.Timedelta(minutes=15)).to_pydatetime()
    values, quality, version = v.arrays_versions(meters, channel, start, end)
    assert values.shape[1] == n
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
            index=idx,
            import_values=i,
            export_values=e,
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
    if not days:
        return {}
    t = vee_status.c
    count: dict[str, int] = {}
    with v.store.engine.connect() as conn:  # how many days each meter has: one row a meter
        for lo in range(0, len(meters), 500):
            q = (
                sa.select(t.meter, sa.func.count())
                .where(
                    t.meter.in_(meters[lo : lo + 500]),
                    t.channel == "import",
                    t.day.between(days[0], days[-1]),
                )
                .group_by(t.meter)
            )
            count.update(conn.execute(q).all())
    short = [m for m in meters if count.get(m, 0) < len(days)]
    done = v.status(short, "import", days)
    return {m: days[int(np.argmax(done[i] < 0))] for i, m in enumerate(short)}


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
    local = first.tz_convert(start.tz)  # the site's time: an interval visibly in the month
    return (
        f"no validated import reading of {meter} for {local.isoformat()} (the first interval "
        f"of {period} without one): "
        f"run VEE first (openmeg vee run --period {period}){_of(meter, billed)}"
    )
