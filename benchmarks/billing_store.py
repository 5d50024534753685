"""The store half of ``benchmarks/billing.py``: bills from the validated series in the store.

A site of ``n`` customers of the benchmark's tariff, one meter each (the demo site's other parts
as they are); their readings ingested a month at a time through ``MeterReadings.ingest`` (the
code of ``openmeg meters import``: import and export, zeros where there is no PV) into
a SQLite file (WAL, ``synchronous=FULL``), each month validated by ``vee_run.vee_site`` (the
code of ``openmeg vee run``). Then, timed month after month with the carry: the billing run's
read of the validated series (``billed_energy.billed_energies``: every meter's validated import
and export, their versions and VEE's status of each day) and ``bill_arrays`` on it; and
separately whole billing runs (``billing_run.run_billing``: the same read, the bills as
``Bill`` documents, each numbered, frozen with its readings' and tariff's versions and issued
in one transaction, the carry taken from the month before's issued bills).
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal

import numpy as np
import pandas as pd

from openmeg.core.site import Site, load_site
from openmeg.core.site_sections import Customer
from openmeg.core.store import Store
from openmeg.core.tariff import Tariff
from openmeg.operation.mdms.store import MeterReadings
from openmeg.operation.mdms.vee_run import vee_site
from openmeg.provider.bill_carry import Carry
from openmeg.provider.bill_matrix import bill_arrays
from openmeg.provider.billed_energy import BilledEnergy, billed_energies
from openmeg.provider.billing_run import month_bounds, run_billing

ISSUE_AT = datetime(2019, 1, 2, 9, 0, tzinfo=UTC)


def bench_site(n: int, tariff: Tariff, timezone: str) -> Site:
    """The demo site with ``n`` customers of ``tariff`` (id ``bench``), a meter each."""
    demo = load_site("demo")
    customers = tuple(
        Customer(id=f"c{i:06d}", name=f"Customer {i}", kind="residential", tariff="bench")
        for i in range(n)
    )
    meters = tuple(
        demo.meters[0].model_copy(update={"id": f"m-{c.id}", "customer": c.id, "devices": ()})
        for c in customers
    )
    return demo.model_copy(
        update={
            "site": demo.site.model_copy(update={"timezone": timezone}),
            "customers": customers,
            "buildings": (),
            "meters": meters,
            "tariffs": {"bench": tariff},
        }
    )


@dataclass
class StoredBills:
    """Fills the store month by month, then bills from it."""

    store: Store
    site: Site
    months: list[str]
    ingest_s: float = 0.0
    vee_s: float = 0.0
    readings: int = 0

    @property
    def meters(self) -> list[str]:
        return [m.id for m in self.site.meters]

    def add_history(self, index: pd.DatetimeIndex, imp: np.ndarray, exp: np.ndarray) -> None:
        """Ingest the weeks before the first month (VEE's like days for its first days)."""
        self._ingest(index, imp, exp, "history")

    def add_month(self, index: pd.DatetimeIndex, imp: np.ndarray, exp: np.ndarray) -> None:
        """Ingest a month's import and export of every meter, then VEE it."""
        period = pd.Timestamp(index[0]).tz_convert(self.site.site.timezone).strftime("%Y-%m")
        self._ingest(index, imp, exp, period)
        start = time.perf_counter()
        lo, hi = month_bounds(period, self.site.site.timezone)
        outcomes = list(
            vee_site(self.site, self.store, lo.to_pydatetime(), hi.to_pydatetime(), now=ISSUE_AT)
        )
        self.vee_s += time.perf_counter() - start
        bad = [f"{o.meter} {o.channel}: {o.problem}" for o in outcomes if o.problem and not o.empty]
        assert not bad, bad[:3]
        self.months.append(period)

    def _ingest(self, index: pd.DatetimeIndex, imp: np.ndarray, exp: np.ndarray, name: str) -> None:
        meters = np.array(self.meters, dtype=object)
        known = set(self.meters)
        start = time.perf_counter()
        rows = np.arange(len(meters))
        for channel, kwh in (("import", imp), ("export", exp)):
            frame = pd.DataFrame(
                {
                    "meter": np.repeat(meters[rows], len(index)),
                    "channel": channel,
                    "interval_start": np.tile(index, len(rows)),
                    "value_kwh": np.round(kwh[rows], 4).ravel(),
                }
            )
            report = MeterReadings(self.store).ingest(
                frame, meters=known, source=f"{name}-{channel}.parquet", received_at=ISSUE_AT
            )
            assert report.new == len(frame), report
            self.readings += len(frame)
        self.ingest_s += time.perf_counter() - start

    def read_and_bill(self, threads: int) -> tuple[float, list[np.ndarray]]:
        """Seconds to read every month's billed energy and bill it, and each month's totals."""
        tz, tariff = self.site.site.timezone, self.site.tariffs["bench"]
        carry: Carry | None = None
        elapsed, totals = 0.0, []
        for period in self.months:
            lo, hi = month_bounds(period, tz)
            start = time.perf_counter()
            energies = billed_energies(self.site, self.store, self.meters, period, lo, hi)
            got = [energies[m] for m in self.meters]
            ok = [e for e in got if isinstance(e, BilledEnergy)]
            assert len(ok) == len(got), [e for e in got if isinstance(e, str)][:3]
            imp = np.array([e.import_values for e in ok])
            exp = np.array([e.export_values for e in ok])
            index = ok[0].index
            arrays, carry = bill_arrays(
                tariff, index, imp, exp, timezone=tz, carry_in=carry, threads=threads
            )
            elapsed += time.perf_counter() - start
            totals.append(arrays.total_cents)
        return elapsed, totals

    def issue(self, totals: list[np.ndarray]) -> float:
        """Seconds of the billing runs of every month in order; the issued totals must be
        the cents of ``read_and_bill``'s."""
        elapsed = 0.0
        for period, cents in zip(self.months, totals, strict=True):
            start = time.perf_counter()
            outcomes = run_billing(self.site, self.store, period, now=ISSUE_AT)
            elapsed += time.perf_counter() - start
            assert all(o.outcome == "issued" for o in outcomes), [o.problem for o in outcomes][:3]
            issued = [o.issued.bill.total for o in outcomes if o.issued is not None]
            assert issued == [Decimal(int(c)) / 100 for c in cents.tolist()], period
        return elapsed

    def report(self) -> None:
        print(
            f"# store: {len(self.meters)} customers x {len(self.months)} months, "
            f"{self.readings} readings ingested in {self.ingest_s:.2f} s, "
            f"validated in {self.vee_s:.2f} s",
            file=sys.stderr,
        )
