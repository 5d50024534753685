"""What a customer is billed for, from validated readings: the meter's import and export per
interval over the period, less its sub-meters' when it has any (an aggregate building's main
meter: the association is billed for the common part only, see ``common_part``), and the
version of every meter channel it came from."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from openmeg.core.site import Site
from openmeg.core.store import Store
from openmeg.operation.mdms.store import MeterReadings
from openmeg.operation.mdms.validated import ValidatedReadings
from openmeg.provider.bill_freeze import readings_version
from openmeg.provider.common_part import common_part


def validated_frame(
    v: ValidatedReadings, meter: str, channel: str, start: pd.Timestamp, end: pd.Timestamp
) -> pd.DataFrame:
    """The validated readings of one meter channel (``ValidatedReadings.latest``)."""
    return v.latest(meter, channel, start.to_pydatetime(), end.to_pydatetime())


@dataclass(frozen=True, kw_only=True)
class BilledEnergy:
    """What a customer is billed for: import and export per interval [kWh] over the whole
    period (UTC index), and the version of every meter channel it came from."""

    import_kwh: pd.Series
    export_kwh: pd.Series
    readings: dict[str, Any]


def billed_energy(
    site: Site, store: Store, meter: str, period: str, start: pd.Timestamp, end: pd.Timestamp
) -> BilledEnergy:
    """The meter's validated energy, less its sub-meters' when it has any; ``ValueError``
    says which reading is missing and what to do."""
    v = ValidatedReadings(store, site.site.id)
    idx = pd.date_range(
        start.tz_convert("UTC"), end.tz_convert("UTC"), freq="15min", inclusive="left"
    )
    subs = [m.id for m in site.meters if m.parent == meter]
    versions: dict[str, Any] = {}
    arrays: dict[str, list[Any]] = {"import": [], "export": []}
    for m in [meter, *subs]:
        for channel in ("import", "export"):
            frame = validated_frame(v, m, channel, start, end)
            versions[f"{m}/{channel}"] = readings_version(frame)
            series = pd.Series(
                frame["value_kwh"].to_numpy(dtype=float),
                index=pd.DatetimeIndex(frame["interval_start"]),
                dtype=float,
            ).reindex(idx)
            if channel == "export":
                series = series.fillna(0.0)  # no export validated: nothing exported
            elif series.isna().any():
                raise ValueError(_missing(store, m, meter, period, series, start, end))
            else:
                _validated_days(v, m, channel, period, start, end)
            arrays[channel].append(series.to_numpy())
    imp, exp = arrays["import"][0], arrays["export"][0]
    if subs:
        imp, exp = common_part(
            imp, exp, np.array(arrays["import"][1:]), np.array(arrays["export"][1:])
        )
    return BilledEnergy(
        import_kwh=pd.Series(imp, index=idx),
        export_kwh=pd.Series(exp, index=idx),
        readings=versions,
    )


def _validated_days(
    v: ValidatedReadings,
    meter: str,
    channel: str,
    period: str,
    start: pd.Timestamp,
    end: pd.Timestamp,
) -> None:
    """Refuse a period with a local day that VEE has not validated, where the MDMS keeps a
    VEE status per (meter, channel, local day)."""
    status = getattr(v, "status", None)
    if status is None:
        return
    days = list(pd.date_range(start, end, freq="D", inclusive="left").strftime("%Y-%m-%d"))
    done = status([meter], channel, days)[0]
    if (done < 0).any():
        first = days[int(np.flatnonzero(done < 0)[0])]
        raise ValueError(
            f"VEE has not validated {meter} {channel} on {first}: "
            f"run VEE first (openmeg vee run --period {period})"
        )


def _missing(
    store: Store,
    meter: str,
    billed: str,
    period: str,
    series: pd.Series,
    start: pd.Timestamp,
    end: pd.Timestamp,
) -> str:
    of = (
        ""
        if meter == billed
        else f"; {meter} is a sub-meter of {billed}, which is billed for its common part"
    )
    raw = MeterReadings(store).series(meter, "import", start.to_pydatetime(), end.to_pydatetime())
    if raw.empty:
        return f"no readings for that period: import or run first (meter {meter}, {period}){of}"
    first = series.index[series.isna()][0]
    return (
        f"no validated import reading of {meter} for {first.isoformat()}: "
        f"run VEE first (openmeg vee run --period {period}){of}"
    )
