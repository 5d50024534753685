"""Condition sensors on equipment: temperature, vibration and noise as functions of loading.

``loading`` is output over rating (0..1); temperatures in °C, vibration in mm/s RMS, noise in dB(A).
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]


def sensor_readings(
    loading: FloatArray,
    ambient_c: FloatArray,
    *,
    temp_rise_c: float,
    vibration_full_mm_s: float,
    noise_full_db: float,
    seed: int,
) -> tuple[FloatArray, FloatArray, FloatArray]:
    """``(temperature_c, vibration_mm_s, noise_db)``.

    Temperature rises with the square of loading (copper losses); vibration grows linearly from
    a 10 % idle floor; noise adds 20·log10 of loading to the full-load level, floored at 35 dB(A).
    A little seeded measurement noise is added to each.
    """
    x = np.clip(np.asarray(loading, dtype=float), 0.0, 1.0)
    rng = np.random.default_rng(seed)
    temp = np.asarray(ambient_c, dtype=float) + temp_rise_c * x**2 + rng.normal(0, 0.2, x.size)
    vib = vibration_full_mm_s * (0.1 + 0.9 * x) + rng.normal(0, 0.02, x.size)
    with np.errstate(divide="ignore"):
        noise = np.where(x > 0, noise_full_db + 20.0 * np.log10(np.maximum(x, 1e-9)), 35.0)
    noise = np.maximum(noise, 35.0) + rng.normal(0, 0.3, x.size)
    return temp, np.maximum(vib, 0.0), noise
