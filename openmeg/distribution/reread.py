"""Reading a meter again (two-way AMI): the interval energies of ``start <= interval start <
end``, from the register values recorded at the boundaries: each interval whose two boundaries
are known is the difference of the register there; one whose boundary is missing stays
unanswered (the MDMS leaves it for VEE to estimate)."""

from __future__ import annotations

import pandas as pd

from openmeg.core.messages import IntervalReading, MeterReadings, ReadRequest
from openmeg.core.store import as_utc
from openmeg.distribution.head_end import INTERVAL


def read_again(request: ReadRequest, registers: pd.Series) -> MeterReadings | None:
    """The readings that ``registers`` (cumulative kWh by boundary instant) give for
    ``request``; ``None`` when they give none."""
    at = {pd.Timestamp(t).tz_convert("UTC"): float(v) for t, v in registers.items()}
    start, end = pd.Timestamp(as_utc(request.start)), pd.Timestamp(as_utc(request.end))
    out = []
    t = start
    while t < end:
        after = t + pd.Timedelta(INTERVAL)
        if t in at and after in at and at[after] >= at[t]:
            out.append(
                IntervalReading(
                    interval_start=t.to_pydatetime(), value_kwh=round(at[after] - at[t], 9)
                )
            )
        t = after
    if not out:
        return None
    return MeterReadings(
        site=request.site, meter=request.meter, channel=request.channel, readings=out
    )
