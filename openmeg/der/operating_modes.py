"""What a device does by itself: a hybrid inverter's self-consumption mode on its own meter, a
CHP's heat-led thermostat mode. Pure and compiled: the simulated field runs them as the devices'
own behaviour and the platform's default controllers send the same requests, one copy of each.

Sign: a positive battery request discharges into the MEG bus.
"""

from __future__ import annotations

from openmeg.core.jit import njit

HEAT_SOC_ON = 0.30
"""Start the CHP when the heat store falls to this state of charge."""
HEAT_SOC_OFF = 0.90
"""Stop the CHP when the heat store reaches this state of charge."""
HEAT_SOC_TARGET = 0.70
HEAT_HORIZON_H = 1.0


@njit
def self_consumption_request_kw(
    net_demand_kw: float, soc: float, reserve_soc: float, grid_connected: bool
) -> float:
    """Battery request: cover the deficit (discharge) or absorb the surplus (charge).

    Parameters
    ----------
    net_demand_kw : float
        Demand minus local generation behind the battery's meter (or at the PCC for a
        community battery), kW.
    soc : float
        The battery's state of charge, fraction of capacity.
    reserve_soc : float
        The outage reserve, fraction of capacity: while grid-connected the battery does not
        discharge at or below it (it still charges); off the grid the reserve is released.
    grid_connected : bool
        Whether the MEG is connected to the utility grid.

    Returns
    -------
    float
        The request, kW; the battery's own limits (power, soc_min, soc_max) are applied by the
        battery.
    """
    if grid_connected and net_demand_kw > 0.0 and soc <= reserve_soc:
        return 0.0
    return net_demand_kw


@njit
def heat_led_chp_request_kw(
    on: bool,
    heat_soc: float,
    heat_demand_kw: float,
    heat_capacity_kwh: float,
    eta_el: float,
    eta_th: float,
    p_min_kw: float,
    p_max_kw: float,
) -> float:
    """Electric request of a heat-led CHP (0 asks it to stop).

    Hysteresis on the heat store: on at ``HEAT_SOC_ON``, off at ``HEAT_SOC_OFF``. While on, it
    makes the heat demand plus what brings the store to ``HEAT_SOC_TARGET`` within an hour.
    """
    want = on
    if heat_soc <= HEAT_SOC_ON:
        want = True
    elif heat_soc >= HEAT_SOC_OFF:
        want = False
    if not want:
        return 0.0
    q_kw = heat_demand_kw + (HEAT_SOC_TARGET - heat_soc) * heat_capacity_kwh / HEAT_HORIZON_H
    return min(max(q_kw * eta_el / eta_th, p_min_kw), p_max_kw)
