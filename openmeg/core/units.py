"""Units and the one sign convention of openmeg.

Sign convention
---------------
Power flowing *into* the MEG bus is positive: generation, storage discharge and import from the
utility grid are positive; consumption, storage charge and export are negative when written as a
signed bus injection. Quantities that are named for one direction (``import_kw``, ``charge_kw``,
``load_kw``) are non-negative magnitudes of that direction.

Names carry their unit: ``p_kw``, ``energy_kwh``, ``price_per_kwh``, ``f_hz``, ``temp_c``.
"""

from __future__ import annotations

INTO_BUS = 1.0
"""Sign of a power flowing into the MEG bus (generation, discharge, import)."""
OUT_OF_BUS = -1.0
"""Sign of a power flowing out of the MEG bus (load, charge, export)."""

MINUTES_PER_HOUR = 60.0
SECONDS_PER_HOUR = 3600.0
KW_PER_MW = 1000.0


def kwh(p_kw: float, seconds: float) -> float:
    """Energy in kWh of a constant power ``p_kw`` held for ``seconds``."""
    return p_kw * seconds / SECONDS_PER_HOUR


def step_hours(step_s: float) -> float:
    """Length of a step of ``step_s`` seconds in hours."""
    return step_s / SECONDS_PER_HOUR
