"""The bus injections the platform knows, for the power flow checks of service restoration.

From the process image: each top-level meter's net import taken at its premises' bus (its
sub-meters are inside it), or, for a meter whose devices sit on several buses (the community's),
its devices' own ``p_kw`` at theirs. Consumption is taken at power factor 0.95 lagging,
generation at unity. A value the image does not hold counts as 0.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np
import numpy.typing as npt

from openmeg.core.site import Site

FloatArray = npt.NDArray[np.float64]
PF_CONSUMPTION = 0.95


def bus_injections(
    site: Site, net: Any, values: Mapping[str, float]
) -> tuple[FloatArray, FloatArray]:
    """Active and reactive injections (MW, Mvar, into each bus of ``net``) from ``values``
    (``device/name`` -> value in the point's unit, kW)."""
    bus_of = {str(n): int(i) for i, n in zip(net.bus.index, net.bus["name"], strict=True)}
    device_bus = {d.id: bus_of[d.bus] for d in site.devices}
    p_kw = np.zeros(len(net.bus))
    for m in site.meters:
        if m.parent is not None or not m.devices:
            continue
        buses = {device_bus[d] for d in m.devices}
        if len(buses) == 1:
            p_kw[buses.pop()] -= _value(values, f"{m.id}/import_kw")
        else:
            for d in m.devices:
                p_kw[device_bus[d]] += _value(values, f"{d}/p_kw")
    tan_phi = math.tan(math.acos(PF_CONSUMPTION))
    q_kvar = np.where(p_kw < 0, p_kw * tan_phi, 0.0)
    return p_kw / 1000.0, q_kvar / 1000.0


def _value(values: Mapping[str, float], key: str) -> float:
    v = values.get(key, 0.0)
    return v if math.isfinite(v) else 0.0
