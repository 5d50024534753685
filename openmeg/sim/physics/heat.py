"""Heat storage with standing losses, and a backup boiler for what the store cannot give.

Energies in kWh, powers in kW. Losses are a fraction of the content per hour.
"""

from __future__ import annotations

from openmeg.core.jit import njit


@njit
def heat_storage_step(
    energy_kwh: float,
    q_in_kw: float,
    q_demand_kw: float,
    dt_h: float,
    capacity_kwh: float,
    loss_per_h: float,
    boiler_kw: float,
) -> tuple[float, float, float, float, float]:
    """One step of the store.

    Returns ``(energy_after_kwh, loss_kwh, boiler_kwh, dumped_kwh, unserved_kwh)``; the heat
    balance ``energy + q_in*dt = energy_after + loss + demand*dt - boiler - unserved + dumped``
    holds exactly.
    """
    loss = energy_kwh * (1.0 - (1.0 - loss_per_h) ** dt_h)
    e = energy_kwh - loss + (q_in_kw - q_demand_kw) * dt_h
    boiler = 0.0
    unserved = 0.0
    dumped = 0.0
    if e < 0.0:
        boiler = min(-e, boiler_kw * dt_h)
        unserved = -e - boiler
        e = 0.0
    elif e > capacity_kwh:
        dumped = e - capacity_kwh
        e = capacity_kwh
    return e, loss, boiler, dumped, unserved
