"""Smart meters: import/export registers and interval energy from a metered net power.

``net_kw`` is the power drawn from the MEG through the meter (positive = import to the premises).
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]


def step_energies_kwh(net_kw: FloatArray, dt_h: float) -> tuple[FloatArray, FloatArray]:
    """``(import_kwh, export_kwh)`` per step, both non-negative."""
    e = np.asarray(net_kw, dtype=float) * dt_h
    return np.clip(e, 0.0, None), np.clip(-e, 0.0, None)


def registers_kwh(
    net_kw: FloatArray, dt_h: float, *, start_import_kwh: float = 0.0, start_export_kwh: float = 0.0
) -> tuple[FloatArray, FloatArray]:
    """Cumulative import and export registers at the end of each step."""
    imp, exp = step_energies_kwh(net_kw, dt_h)
    return start_import_kwh + np.cumsum(imp), start_export_kwh + np.cumsum(exp)


def interval_energy_kwh(
    net_kw: FloatArray, dt_h: float, steps_per_interval: int
) -> tuple[FloatArray, FloatArray]:
    """Import and export energy per interval (e.g. 15 steps of 1 min); a partial tail is dropped."""
    imp, exp = step_energies_kwh(net_kw, dt_h)
    n = imp.size // steps_per_interval * steps_per_interval
    return (
        imp[:n].reshape(-1, steps_per_interval).sum(axis=1),
        exp[:n].reshape(-1, steps_per_interval).sum(axis=1),
    )
