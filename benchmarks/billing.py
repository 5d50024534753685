"""Benchmark: a month's bills for all customers of a tariff on whole arrays, against PySAM.

``CUSTOMERS`` customers (half with PV) x 12 months at 15 minutes = 100,008 customer-months on a
time-of-use tariff with two-tier energy, time-of-use and flat demand charges, a fixed charge and
net metering (kWh carried to the same period of the next month, December true-up). The readings
are validated arrays in memory (as ``ValidatedReadings.arrays`` gives them); each month's bills
are made by ``bill_arrays`` (every line of every bill to the cent, and the carry for the next
month), timed month after month with the carry, after one warm-up call that loads the compiled
kernel of the pass over the readings (numba, cached on disk). Then the same bills as ``Bill``
documents of exact decimals (``bills_from_arrays``), and, in the same run, NREL's PySAM
``Utilityrate5`` on a sample of the same customers (its tariff converted by NREL's
``URDBv8_to_ElectricityRates``), whose monthly bills must equal openmeg's within a cent.

From the store (``billing_store``): the first ``--store-customers`` of those customers'
readings for the first ``--store-months`` months (and the four weeks before, VEE's like days)
ingested into a SQLite file and validated by VEE as ``meters import`` and ``vee run`` do it;
then timed, month after month with the carry, the billing run's read of the validated series
and ``bill_arrays`` on it, and separately whole billing runs that issue every bill
(``run_billing``), whose totals must be those cents.

Prints one JSON object a line: ``billing_100k_s`` (target at most 1 s), ``billing_100k_bills_s``
(with the decimal documents), ``pysam_customer_months_per_s`` beside openmeg's rate, and
``billing_100k_from_store_s`` and ``billing_100k_issued_s`` (the store's figures for 100,000
customer-months, from the customer-months stored: the time grows with them; ``--no-store``
leaves them out). ``--customers N`` for quick runs (``--quick``: 834 customers, 100 of them
over 3 months stored); ``--pysam-sample N``.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from openmeg.core.store import Store, sqlite_url
from openmeg.core.tariff import Tariff
from openmeg.provider.bill_carry import Carry
from openmeg.provider.bill_matrix import MonthBills, bill_arrays
from openmeg.provider.billing import bills_from_arrays

sys.path[:0] = [str(Path(__file__).resolve().parents[1]), str(Path(__file__).resolve().parent)]
from billing_store import StoredBills, bench_site  # noqa: E402

from tests.provider.sam_oracle import sam_rates, sam_year, synthetic_customers  # noqa: E402

TZ = "America/Phoenix"  # SAM's clock has no daylight saving time; 2018 starts on a Monday
LOCAL = pd.date_range("2018-01-01", periods=365 * 96, freq="15min", tz=TZ)
UTC = LOCAL.tz_convert("UTC")
PEAK = [[1 if 16 <= h < 21 else 0 for h in range(24)] for _ in range(12)]
OFF = [[0] * 24 for _ in range(12)]
TARIFF = Tariff.model_validate(
    {
        "name": "residential and small business, time of use, demand, net metering",
        "energyratestructure": [
            [{"max": 500, "rate": 0.10}, {"rate": 0.13}],
            [{"max": 500, "rate": 0.27}, {"rate": 0.33}],
        ],
        "energyweekdayschedule": PEAK,
        "energyweekendschedule": OFF,
        "demandratestructure": [[{"rate": 1.5}], [{"rate": 7.5}]],
        "demandweekdayschedule": PEAK,
        "demandweekendschedule": OFF,
        "flatdemandstructure": [[{"max": 10, "rate": 3.0}, {"rate": 4.0}]],
        "flatdemandmonths": [0] * 12,
        "fixedchargefirstmeter": 0.35,
        "fixedchargeunits": "$/day",
        "dgrules": "Net Metering",
        "nm_yearend_sell_rate": 0.03,
    }
)
TARGET_S = 1.0


def month_readings(month: int, customers: int) -> tuple[pd.DatetimeIndex, np.ndarray, np.ndarray]:
    """A month of validated import and export kWh [customers x intervals] and its UTC index."""
    cols = LOCAL.month == month
    load, pv = synthetic_customers(LOCAL[cols], customers, seed=month)
    return UTC[cols], np.maximum(load - pv, 0.0), np.maximum(pv - load, 0.0)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--customers", type=int, default=8334)
    parser.add_argument("--quick", action="store_true", help="834 customers")
    parser.add_argument("--pysam-sample", type=int, default=40)
    parser.add_argument("--threads", type=int, default=2, help="threads of the pass over readings")
    parser.add_argument(
        "--store-customers", type=int, default=8334, help="customers billed from the store"
    )
    parser.add_argument("--store-months", type=int, default=12)
    parser.add_argument("--no-store", action="store_true", help="no bills from the store")
    args = parser.parse_args()
    customers = 834 if args.quick else args.customers
    store_n = 0 if args.no_store else min(100 if args.quick else args.store_customers, customers)
    store_months = 3 if args.quick else args.store_months
    tmp = tempfile.TemporaryDirectory()
    store = Store(sqlite_url(Path(tmp.name) / "bills.db"))
    stored = StoredBills(store, bench_site(store_n, TARIFF, TZ), [])
    if store_n:  # four weeks before January: the like days VEE estimates January's first from
        before = pd.date_range(LOCAL[0] - pd.Timedelta(weeks=4), LOCAL[0], freq="15min", tz=TZ)
        load, pv = synthetic_customers(before[:-1], store_n, seed=0)
        utc = before[:-1].tz_convert("UTC")
        stored.add_history(utc, np.maximum(load - pv, 0.0), np.maximum(pv - load, 0.0))
    sample = min(args.pysam_sample, customers)
    names = [f"c{i:06d}" for i in range(customers)]
    meters = [f"m-{n}" for n in names]
    warm = UTC[:96]  # loads numba's compiled kernel (from its disk cache) once per process
    bill_arrays(TARIFF, warm, np.zeros((1, 96)), np.zeros((1, 96)), timezone=TZ)
    carry: Carry | None = None
    compute_s = bills_s = 0.0
    sample_imp, sample_exp, ours = [], [], []
    for month in range(1, 13):
        index, imp, exp = month_readings(month, customers)
        start = time.perf_counter()
        arrays, carry = bill_arrays(
            TARIFF, index, imp, exp, timezone=TZ, carry_in=carry, threads=args.threads
        )
        compute_s += time.perf_counter() - start
        start = time.perf_counter()
        bills = bills_from_arrays(
            arrays,
            tariff=TARIFF.name,
            customers=names,
            meters=meters,
            start=pd.Timestamp(index[0]).tz_convert(TZ),
            end=(pd.Timestamp(index[-1]) + pd.Timedelta(minutes=15)).tz_convert(TZ),
        )
        bills_s += time.perf_counter() - start
        assert len(bills) == customers
        sample_imp.append(imp[:sample])
        sample_exp.append(exp[:sample])
        ours.append(_totals(arrays)[:sample])
        if store_n and month <= store_months:
            stored.add_month(index, imp[:store_n], exp[:store_n])
        del imp, exp, arrays, bills
    print(
        f"# {customers} customers x 12 months: arrays {compute_s:.3f} s, "
        f"with Bill documents {compute_s + bills_s:.3f} s",
        file=sys.stderr,
    )
    imp_year, exp_year = np.concatenate(sample_imp, axis=1), np.concatenate(sample_exp, axis=1)
    rates = sam_rates(TARIFF)
    start = time.perf_counter()
    sam = [sam_year(rates, imp_year[c], exp_year[c])["total"] for c in range(sample)]
    pysam_s = time.perf_counter() - start
    gap = float(np.abs(np.array(sam) - np.array(ours).T).max())
    assert gap <= 0.01, f"openmeg and PySAM differ by {gap:.4f} on a monthly bill"
    customer_months = 12 * customers
    lines = [
        {
            "metric": "billing_100k_s",
            "value": round(compute_s * 100_000 / customer_months, 3),
            "unit": "s",
            "target": f"<={TARGET_S}",
            "customer_months": customer_months,
            "measured_s": round(compute_s, 3),
            "threads": args.threads,
        },
        {
            "metric": "billing_100k_bills_s",
            "value": round((compute_s + bills_s) * 100_000 / customer_months, 3),
            "unit": "s",
            "note": "with every bill as a Bill of Decimal lines",
            "customer_months": customer_months,
        },
        {
            "metric": "pysam_customer_months_per_s",
            "value": round(12 * sample / pysam_s, 1),
            "unit": "customer-months/s",
            "openmeg_customer_months_per_s": round(customer_months / compute_s),
            "sample_customers": sample,
            "max_abs_diff_vs_openmeg": round(gap, 6),
        },
    ]
    if store_n:
        stored.report()
        read_s, totals = stored.read_and_bill(args.threads)
        issued_s = stored.issue(totals)
        stored_months = store_n * len(stored.months)
        for metric, seconds, note in (
            ("billing_100k_from_store_s", read_s, "validated series read from SQLite, billed"),
            ("billing_100k_issued_s", issued_s, "run_billing: read, billed, numbered, issued"),
        ):
            lines.append(
                {
                    "metric": metric,
                    "value": round(seconds * 100_000 / stored_months, 3),
                    "unit": "s",
                    "note": note,
                    "customer_months": stored_months,
                    "measured_s": round(seconds, 3),
                }
            )
    store.close()
    tmp.cleanup()
    for line in lines:
        print(json.dumps(line))


def _totals(arrays: MonthBills) -> np.ndarray:
    totals: np.ndarray = arrays.components["total"]
    return totals


if __name__ == "__main__":
    main()
