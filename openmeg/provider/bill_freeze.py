"""What an issued bill is frozen with, and the note that takes one revision to the next.

Pure functions: the tariff's version (a SHA-256 of its canonical JSON), the version of the
readings a bill used (count, newest version, estimated and edited intervals, and a SHA-256 of
the interval starts, versions and values), a bill as plain JSON data and back, a document's
content hash, and the note lines (new minus old, line by line) of a revision. Money stays in
``Decimal``: a note's lines add up exactly to the difference of the two totals.
"""

from __future__ import annotations

import hashlib
import json
from decimal import Decimal
from typing import Any

import numpy as np
import pandas as pd

from openmeg.core.tariff import Tariff
from openmeg.provider.billing import Bill, BillLine


def canonical_json(data: Any) -> str:
    """``data`` as JSON with sorted keys and no spaces: the same data gives the same text."""
    return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def tariff_version(tariff: Tariff) -> str:
    """The tariff's version: SHA-256 (hex) of its canonical JSON (every field, defaults too)."""
    return sha256(canonical_json(tariff.model_dump(mode="json")))


QUALITY = ("missing", "good", "estimated", "edited")
"""Quality codes of the validated series (index into this tuple), as the MDMS gives them."""


def readings_versions(
    values: np.ndarray, version: np.ndarray, quality: np.ndarray
) -> list[dict[str, Any]]:
    """The version of each meter channel's validated readings as a bill used them.

    Parameters
    ----------
    values
        kWh per meter and interval of the period, NaN where missing [meters x intervals].
    version
        The version of each interval (0: the raw reading) [meters x intervals].
    quality
        Quality codes into ``QUALITY`` (0 missing) [meters x intervals].

    Returns
    -------
    list of dict
        Per meter: ``intervals`` (with a value), ``max_version``, ``estimated`` and ``edited``
        (counts of intervals) and ``digest``: SHA-256 of the row's values [kWh, missing as 0]
        as little-endian float64, versions as int64 and quality codes as int8.
    """
    kwh = np.where(np.isnan(values), 0.0, values).astype("<f8")
    ver, q = version.astype("<i8"), quality.astype("i1")
    counts = np.stack(
        [
            (~np.isnan(values)).sum(axis=1),
            ver.max(axis=1, initial=0),
            (q == QUALITY.index("estimated")).sum(axis=1),
            (q == QUALITY.index("edited")).sum(axis=1),
        ],
        axis=1,
    ).tolist()
    return [
        {
            "intervals": n,
            "max_version": top,
            "estimated": est,
            "edited": edited,
            "digest": hashlib.sha256(
                kwh[i].tobytes() + ver[i].tobytes() + q[i].tobytes()
            ).hexdigest(),
        }
        for i, (n, top, est, edited) in enumerate(counts)
    ]


def line_dict(line: BillLine) -> dict[str, str]:
    return {
        "description": line.description,
        "quantity": str(line.quantity),
        "unit": line.unit,
        "rate": str(line.rate),
        "amount": str(line.amount),
    }


def line_of(data: dict[str, str]) -> BillLine:
    return BillLine(
        description=data["description"],
        quantity=Decimal(data["quantity"]),
        unit=data["unit"],
        rate=Decimal(data["rate"]),
        amount=Decimal(data["amount"]),
    )


def bill_dict(bill: Bill) -> dict[str, Any]:
    """``bill`` as JSON data: instants in ISO 8601 with their offset, decimals as strings."""
    return {
        "customer": bill.customer,
        "meter": bill.meter,
        "start": bill.start.isoformat(),
        "end": bill.end.isoformat(),
        "tariff": bill.tariff,
        "lines": [line_dict(x) for x in bill.lines],
        "total": str(bill.total),
    }


def bill_of(data: dict[str, Any], timezone: str) -> Bill:
    """The ``Bill`` of ``bill_dict`` data, its instants in ``timezone``."""
    return Bill(
        customer=data["customer"],
        meter=data["meter"],
        start=pd.Timestamp(data["start"]).tz_convert(timezone),
        end=pd.Timestamp(data["end"]).tz_convert(timezone),
        tariff=data["tariff"],
        lines=tuple(line_of(x) for x in data["lines"]),
    )


def same_charges(old: Bill, new: Bill) -> bool:
    """Whether the two bills charge the same: same meter, same lines to the cent."""
    return old.meter == new.meter and [line_dict(x) for x in old.lines] == [
        line_dict(x) for x in new.lines
    ]


def note_lines(old: Bill, new: Bill) -> tuple[BillLine, ...]:
    """What a revision changes, one line per charge (description and unit) that changed.

    Each line is the new line minus the old (quantity [its unit] and amount [currency]; the
    rate is the new one, or the old one for a charge the new bill no longer has), so the lines
    add up exactly to ``new.total - old.total``: positive for a debit note, negative for a
    credit note.
    """
    zero = Decimal("0")

    def by_charge(bill: Bill) -> dict[tuple[str, str], tuple[Decimal, Decimal, Decimal]]:
        out: dict[tuple[str, str], tuple[Decimal, Decimal, Decimal]] = {}
        for x in bill.lines:
            q, _, a = out.get((x.description, x.unit), (zero, zero, zero))
            out[(x.description, x.unit)] = (q + x.quantity, x.rate, a + x.amount)
        return out

    before, after = by_charge(old), by_charge(new)
    lines = []
    for key in [*after, *(k for k in before if k not in after)]:
        q1, r1, a1 = after.get(key, (zero, zero, zero))
        q0, r0, a0 = before.get(key, (zero, r1, zero))
        if q1 == q0 and a1 == a0:
            continue
        lines.append(
            BillLine(
                description=key[0],
                quantity=q1 - q0,
                unit=key[1],
                rate=r1 if key in after else r0,
                amount=a1 - a0,
            )
        )
    return tuple(lines)
