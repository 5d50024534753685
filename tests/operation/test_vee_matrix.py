"""VEE on the [meters x intervals] matrix against the per-series reference (``validate`` and
``estimate``), meter by meter, on random data over a fall-back day with registers; and what a
run stores, by hand."""

import numpy as np
import pandas as pd
import pytest

from openmeg.operation.mdms.estimate import estimate
from openmeg.operation.mdms.estimate_matrix import METHODS
from openmeg.operation.mdms.vee import VeeConfig, expected_index, validate
from openmeg.operation.mdms.vee_arrays import ESTIMATE_ON, changes, vee_matrix
from openmeg.operation.mdms.vee_matrix import Registers

CFG = VeeConfig(timezone="America/New_York", high_kwh=3.0, low_kwh=0.0, zero_run_intervals=8)
START = pd.Timestamp("2026-10-27", tz="America/New_York")  # the window holds 1 November
END = START + pd.DateOffset(days=7)


def _case(n_m: int) -> tuple[np.ndarray, np.ndarray, Registers, pd.DatetimeIndex]:
    rng = np.random.default_rng(7)
    idx = expected_index(START, END, CFG)
    n = len(idx)
    values = rng.gamma(2.0, 0.2, (n_m, n))
    history = rng.gamma(2.0, 0.2, (n_m, 4 * 7 * 96))
    values[rng.random(values.shape) < 0.02] = np.nan
    for m in range(n_m):
        k = int(rng.integers(0, n - 20))
        values[m, k : k + int(rng.integers(1, 15))] = np.nan
    values[rng.random(values.shape) < 0.005] = -0.1
    values[rng.random(values.shape) < 0.002] = 5.0
    values[3, 100:120] = 0.0
    history[5] = np.nan  # no like days: a long gap of meter 5 cannot be estimated
    values[5, 300:320] = np.nan
    rows, at, kwh = [], [], []
    for m in range(0, n_m, 2):
        for t in sorted(rng.choice(n, 3, replace=False).tolist()):
            rows.append(m)
            at.append(idx[t].value)
            kwh.append(1000.0 + float(np.nansum(np.clip(values[m, :t], 0, None))) * 1.3)
    return values, history, Registers.of(np.array(rows), np.array(at), np.array(kwh)), idx


@pytest.mark.filterwarnings("ignore::pandas.errors.PerformanceWarning")  # the reference's lookups
def test_the_matrix_gives_what_the_reference_gives_meter_by_meter() -> None:
    values, history, regs, idx = _case(16)
    hidx = expected_index(START - pd.Timedelta(weeks=4), START, CFG)
    result = vee_matrix(values, start=START, cfg=CFG, history=history, registers=regs)
    frame = result.flags.frame(START, CFG)
    seen = {"problem": 0, "like_day_scaled": 0, "interpolation": 0, "like_day": 0}
    for m in range(len(values)):
        s = pd.Series(values[m], index=idx).dropna()
        mine = regs.row == m
        reg = pd.Series(regs.kwh[mine], index=pd.to_datetime(regs.at_ns[mine], utc=True))
        ref = validate(s, start=START, end=END, cfg=CFG, registers=reg)
        got = frame[result.flags.row == m].reset_index(drop=True)
        pd.testing.assert_frame_equal(got, ref, check_dtype=False)
        replace = pd.DatetimeIndex(ref.interval_start[ref.rule.isin(ESTIMATE_ON)]).unique()
        good = s.drop(replace, errors="ignore")
        hist = pd.Series(history[m], index=hidx).dropna()
        try:
            est, how = estimate(
                good, replace.sort_values(), CFG, history=pd.concat([hist, good]), registers=reg
            )
        except ValueError as err:
            assert result.problem[m] == str(err)
            assert (result.quality[m] != 2).all()
            seen["problem"] += 1
            continue
        assert result.problem[m] == ""
        cols = ((est.index - idx[0]) // CFG.step).to_numpy().astype(int)
        assert np.flatnonzero(result.quality[m] == 2).tolist() == sorted(cols.tolist())
        np.testing.assert_allclose(result.values[m, cols], est.to_numpy(), rtol=1e-12)
        assert [METHODS[k] for k in result.method[m, cols]] == how.tolist()
        for k in set(how):
            seen[k] += 1
        kept = result.quality[m] == 1
        np.testing.assert_array_equal(result.values[m, kept], values[m, kept])
    assert all(n > 0 for n in seen.values()), seen  # every path was taken


def test_only_what_changed_gets_a_version() -> None:
    raw = np.array([[0.5, np.nan, 0.7, 0.4], [0.2, 0.2, 0.2, 0.2]])
    history = np.full((2, 4 * 7 * 96), 0.3)
    result = vee_matrix(
        raw, start=pd.Timestamp("2026-06-03", tz="UTC"), cfg=VeeConfig(), history=history
    )
    assert result.values[0, 1] == pytest.approx(0.6) and result.quality[0].tolist() == [1, 2, 1, 1]
    none = np.zeros(0, np.int64)
    first = changes(result, row=none, col=none, version=none, value=np.zeros(0), quality=none)
    assert (first.row.tolist(), first.col.tolist(), first.version.tolist()) == ([0], [1], [1])
    # stored: version 1 of (0, 1) as estimated; (1, 3) edited by hand to 0.9
    stored = dict(
        row=np.array([0, 1]),
        col=np.array([1, 3]),
        version=np.array([1, 1]),
        value=np.array([0.6, 0.9]),
        quality=np.array([2, 3]),
    )
    again = changes(result, **stored)
    assert again.row.size == 0  # the same estimate again, an edit left alone
    raw[0, 1] = 0.65  # the late reading arrives: the interval is good again, version 2
    late = changes(
        vee_matrix(
            raw, start=pd.Timestamp("2026-06-03", tz="UTC"), cfg=VeeConfig(), history=history
        ),
        **stored,
    )
    assert (late.row.tolist(), late.col.tolist(), late.version.tolist()) == ([0], [1], [2])
    assert (late.value.tolist(), late.quality.tolist(), late.method.tolist()) == ([0.65], [1], [0])
