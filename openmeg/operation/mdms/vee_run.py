"""A VEE run over many meters: read the raw arrays, validate and estimate them on the matrix,
store the versions that changed, the flags and each local day's status (one transaction)."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from datetime import datetime

import numpy as np
import pandas as pd

from openmeg.core.site import Site
from openmeg.core.store import Store
from openmeg.operation.mdms import raw_arrays
from openmeg.operation.mdms.estimate_matrix import HISTORY_WEEKS, METHODS
from openmeg.operation.mdms.store import CHANNELS
from openmeg.operation.mdms.validated import QUALITY, STEP, ValidatedReadings, grid
from openmeg.operation.mdms.vee import RULES, VeeConfig
from openmeg.operation.mdms.vee_arrays import changes, vee_matrix
from openmeg.operation.mdms.vee_matrix import MatrixFlags, Registers, local_days


@dataclass(frozen=True, kw_only=True)
class ChannelVee:
    """What VEE did to one meter channel, or why it could not do it (``problem``)."""

    meter: str
    channel: str
    new_versions: int = 0
    estimated: int = 0
    rules: tuple[tuple[str, int], ...] = ()
    """How many intervals each rule flagged, most flagged first."""
    problem: str = ""
    empty: bool = False
    """No readings at all (``problem`` says so): nothing to validate, rather than a failure."""
    flags: pd.DataFrame | None = None
    """The flags themselves (only for a run over one meter)."""


def day_status(
    start: pd.Timestamp, n: int, offset: int, revisions: np.ndarray, cfg: VeeConfig
) -> tuple[list[str], np.ndarray]:
    """The complete local days of the window (ISO dates) and, per (meter, day), the sum of
    the revisions of the UTC days it overlaps; ``offset``: the window's first column in the
    UTC-day span of ``revisions``."""
    bounds = local_days(start, n, cfg)
    at = pd.to_datetime(start.value + bounds * STEP.value, utc=True).tz_convert(cfg.timezone)
    midnight = (at.hour == 0) & (at.minute == 0)
    whole = np.flatnonzero(midnight[:-1] & midnight[1:])
    per_day = raw_arrays.PER_DAY
    d0 = (bounds[whole] + offset) // per_day
    d1 = -(-(bounds[whole + 1] + offset) // per_day)
    cum = np.zeros((revisions.shape[0], revisions.shape[1] + 1), np.int64)
    np.cumsum(revisions, axis=1, out=cum[:, 1:])
    return [d.date().isoformat() for d in at[whole]], cum[:, d1] - cum[:, d0]


def vee_channel(
    v: ValidatedReadings,
    meters: Sequence[str],
    channel: str,
    start: datetime,
    end: datetime,
    cfg: VeeConfig,
    *,
    active: bool | np.ndarray = True,
    registers: Registers | None = None,
    now: datetime,
) -> list[ChannelVee]:
    """Validate ``[start, end)`` of one channel of ``meters`` on the matrix; store for each
    meter that could be done its changed versions, flags and days' status; one outcome each."""
    names = list(meters)
    first, n = grid(start, end)
    hist = HISTORY_WEEKS * 7 * raw_arrays.PER_DAY
    lo = raw_arrays.utc_day_floor((first - hist * STEP).to_pydatetime())
    hi = raw_arrays.utc_day_ceil((first + n * STEP).to_pydatetime())
    span, revisions = raw_arrays.raw_days(v.raw, names, channel, lo, hi)
    i0 = int((first - lo) / STEP)
    raw, history = span[:, i0 : i0 + n], span[:, i0 - hist : i0]
    if registers is None:
        registers = raw_arrays.registers(v.raw, names, channel, start, end)
    result = vee_matrix(
        raw, start=first, cfg=cfg, history=history, active=active, registers=registers
    )
    problem = result.problem
    nothing = np.isnan(raw).all(axis=1) & np.isnan(history).all(axis=1)
    problem[nothing] = (
        f"no readings from {first} to {first + n * STEP}: import them (openmeg meters import) "
        "or run the MEG first"
    )
    cur = v.versions(names, channel, first, n)
    todo = changes(
        result,
        row=cur.row,
        col=cur.col,
        version=cur.version,
        value=cur.value,
        quality=cur.quality,
    )
    ok = problem == ""
    fl = result.flags
    run_row, run_col, run_len, run_rule, run_detail = fl.runs()
    keep = ok[run_row]
    at = pd.to_datetime(first.value + np.arange(n) * STEP.value, utc=True).to_pydatetime()
    days, revs = day_status(first, n, i0, revisions, cfg)
    done = [m for m, good in zip(names, ok.tolist(), strict=True) if good]
    v.store_run(
        meters=done,
        channel=channel,
        start=first.to_pydatetime(),
        end=(first + n * STEP).to_pydatetime(),
        versions=[
            {
                "meter": names[r],
                "channel": channel,
                "interval_start": at[c],
                "version": ver,
                "value_kwh": val,
                "quality": QUALITY[q],
                "method": METHODS[m],
                "user": "vee",
                "reason": "",
                "created_at": now,
            }
            for r, c, ver, val, q, m in zip(
                todo.row.tolist(),
                todo.col.tolist(),
                todo.version.tolist(),
                todo.value.tolist(),
                todo.quality.tolist(),
                todo.method.tolist(),
                strict=True,
            )
        ],
        flags=[
            {
                "meter": names[r],
                "channel": channel,
                "interval_start": at[c],
                "intervals": size,
                "rule": RULES[rule],
                "detail": detail,
                "created_at": now,
            }
            for r, c, size, rule, detail in zip(
                run_row[keep].tolist(),
                run_col[keep].tolist(),
                run_len[keep].tolist(),
                run_rule[keep].tolist(),
                run_detail[keep].tolist(),
                strict=True,
            )
        ],
        status=[
            {
                "meter": names[r],
                "channel": channel,
                "day": day,
                "raw_revision": rev,
                "validated_at": now,
            }
            for r, rows in zip(np.flatnonzero(ok).tolist(), revs[ok].tolist(), strict=True)
            for day, rev in zip(days, rows, strict=True)
        ],
    )
    out = _outcomes(names, channel, result.quality, fl, todo.row, problem, first, cfg)
    return [replace(o, empty=bool(e)) for o, e in zip(out, nothing.tolist(), strict=True)]


def _outcomes(
    names: list[str],
    channel: str,
    quality: np.ndarray,
    fl: MatrixFlags,
    written: np.ndarray,
    problem: np.ndarray,
    first: pd.Timestamp,
    cfg: VeeConfig,
) -> list[ChannelVee]:
    n_m = len(names)
    new = np.bincount(written, minlength=n_m)
    estimated = (quality == 2).sum(axis=1)
    pairs, counts = np.unique(fl.row * len(RULES) + fl.rule, return_counts=True)
    per_meter: list[list[tuple[str, int]]] = [[] for _ in range(n_m)]
    for p, k in zip(pairs.tolist(), counts.tolist(), strict=True):
        per_meter[p // len(RULES)].append((RULES[p % len(RULES)], k))
    out = []
    for i, name in enumerate(names):
        if problem[i]:
            out.append(ChannelVee(meter=name, channel=channel, problem=str(problem[i])))
            continue
        out.append(
            ChannelVee(
                meter=name,
                channel=channel,
                new_versions=int(new[i]),
                estimated=int(estimated[i]),
                rules=tuple(sorted(per_meter[i], key=lambda rk: (-rk[1], rk[0]))),
                flags=fl.frame(first, cfg)[fl.row == i].reset_index(drop=True)
                if n_m == 1
                else None,
            )
        )
    return out


def vee_site(
    site: Site, store: Store, start: datetime, end: datetime, *, now: datetime
) -> Iterator[ChannelVee]:
    """Validate ``[start, end)`` of every meter channel of the site on the matrix, estimate
    what must be (the import channel is the active one), store what changed; one outcome per
    channel."""
    validated = ValidatedReadings(store, site.site.id)
    cfg = VeeConfig(timezone=site.site.timezone, **site.vee.model_dump())
    meters = [m.id for m in site.meters]
    for channel in CHANNELS:
        yield from vee_channel(
            validated, meters, channel, start, end, cfg, active=channel == "import", now=now
        )
