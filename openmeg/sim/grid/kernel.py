"""The plant's step loop: power balance, devices' own modes, islanding, droop and load shedding.

Compiled with numba; ``run_steps`` advances the whole MEG from step ``k0`` to ``k1`` and writes
every device's power into the output arrays. Units: kW, kWh, Hz; power into the bus positive.

Balance every step (kW):
``ren_out + chp + fc + import + discharge = served + export + charge + losses + spill``.

Grid-connected, batteries in self-consumption do not discharge below their outage reserve
(``reserve_soc``); off the grid the reserve is released and they may go down to ``soc_min``.

Island operation: the grid-forming units (batteries and CHPs flagged ``grid_forming``) take the
imbalance ``D``; the frequency is ``f0 - (D - S) / K`` where ``S`` is the setpoint their
secondary control has reached and ``K = sum(P_n / (droop * f0))``. Secondary control moves ``S``
toward ``D`` with a 60 s time constant; the frequency reported for a step is the one at its end,
the shedding decision uses the one at its start. The island uses what it has before it sheds:
the dispatchable units on their own modes (non-grid-forming CHPs, fuel cells; not those under a
command) are raised toward their maximum within their ramp limits and minimum down times (one
its own mode would stop is kept on if the island needs it, and none ramps down by its own mode
while load is shed), and the grid-forming CHPs carry what they can within their ramp, the
grid-forming batteries taking the rest; both only as far as the grid-forming units can absorb
the surplus (charging the batteries) without renewables being curtailed. Loads are shed by
priority (lowest number first, never critical ones) only for what is left: while the frequency
would fall below ``shed_below_hz`` or the units cannot supply ``D``; renewables are curtailed
when the frequency would rise as far above nominal. Shed loads come back one per step when there
is headroom.
"""

from __future__ import annotations

import math

import numpy as np

from openmeg.core.jit import njit
from openmeg.der.operating_modes import heat_led_chp_request_kw, self_consumption_request_kw
from openmeg.sim.physics.battery import battery_limits_kw, battery_step
from openmeg.sim.physics.chp import chp_heat_kw, chp_step, ramp_toward
from openmeg.sim.physics.heat import heat_storage_step

GRID, ISLAND, BLACKOUT = 0, 1, 2

# Parameter tables: one row per device, columns named by the site file's fields (a device's
# ratings in devices, its physics in the scenario: openmeg.sim.plant builds them).
BATTERY_COLUMNS = (
    "capacity_kwh",
    "p_charge_max_kw",
    "p_discharge_max_kw",
    "eta_charge",
    "eta_discharge",
    "soc_min",
    "soc_max",
    "droop_pct",
    "grid_forming",
    "reserve_soc",
)
B_CAP, B_PC, B_PD, B_EC, B_ED, B_SMIN, B_SMAX, B_DROOP, B_GF, B_RES = range(len(BATTERY_COLUMNS))
CHP_COLUMNS = (
    "p_el_min_kw",
    "p_el_max_kw",
    "ramp_kw_per_min",
    "min_up_min",
    "min_down_min",
    "eta_el",
    "eta_th",
    "droop_pct",
    "grid_forming",
    "heat_storage",
)
C_PMIN, C_PMAX, C_RAMP, C_UP, C_DOWN, C_EEL, C_ETH, C_DROOP, C_GF, C_HS = range(len(CHP_COLUMNS))
FUEL_CELL_COLUMNS = ("p_min_kw", "p_max_kw", "p_set_kw", "ramp_kw_per_min")
F_PMIN, F_PMAX, F_PSET, F_RAMP = range(len(FUEL_CELL_COLUMNS))
HEAT_STORAGE_COLUMNS = ("capacity_kwh", "loss_per_h", "boiler_kw")
H_CAP, H_LOSS, H_BOILER = range(len(HEAT_STORAGE_COLUMNS))
# mode state: mode, secondary setpoint S (kW), last frequency (Hz), events recorded,
# island phase angle against the utility (deg), waiting for the sync check (0/1)
M_MODE, M_SSET, M_FREQ, M_NEV, M_PHASE, M_WAIT = range(6)
SECONDARY_TAU_S = 60.0
RESTORE_HEADROOM = 0.9


@njit
def _record(events: np.ndarray, state: np.ndarray, k: int, code: int) -> None:
    n = int(state[M_NEV])
    if n < events.shape[0]:
        events[n, 0] = k
        events[n, 1] = code
        state[M_NEV] = n + 1


@njit
def _battery_step(
    soc: np.ndarray,
    b: int,
    p_request_kw: float,
    dt_h: float,
    bat_par: np.ndarray,
    soc_floor: float = 0.0,
) -> tuple[float, float]:
    """``battery_step`` for battery ``b`` of the parameter table; a discharge request stops at
    ``soc_floor`` when it lies above ``soc_min`` (the outage reserve)."""
    s_min = bat_par[b, B_SMIN]
    if p_request_kw > 0.0:
        s_min = max(s_min, soc_floor)
    return battery_step(
        soc[b],
        p_request_kw,
        dt_h,
        bat_par[b, B_CAP],
        bat_par[b, B_PC],
        bat_par[b, B_PD],
        bat_par[b, B_EC],
        bat_par[b, B_ED],
        s_min,
        bat_par[b, B_SMAX],
    )


@njit
def _battery_limits(
    soc: np.ndarray, b: int, dt_h: float, bat_par: np.ndarray
) -> tuple[float, float]:
    """``battery_limits_kw`` for battery ``b`` of the parameter table."""
    return battery_limits_kw(
        soc[b],
        dt_h,
        bat_par[b, B_CAP],
        bat_par[b, B_PC],
        bat_par[b, B_PD],
        bat_par[b, B_EC],
        bat_par[b, B_ED],
        bat_par[b, B_SMIN],
        bat_par[b, B_SMAX],
    )


@njit
def _wrap_deg(angle: float) -> float:
    """An angle in degrees, wrapped into -180 .. 180."""
    return (angle + 180.0) % 360.0 - 180.0


@njit
def _next_to_shed(shed: np.ndarray, served: np.ndarray, load_prio: np.ndarray) -> int:
    """The served, sheddable load with the lowest priority number, or -1."""
    j = -1
    for i in range(served.shape[0]):
        sheddable = not shed[i] and served[i] > 0.0 and np.isfinite(load_prio[i])
        if sheddable and (j < 0 or load_prio[i] < load_prio[j]):
            j = i
    return j


@njit
def _raise_units(
    need_kw: float,
    chp_room: np.ndarray,
    chp_jump: np.ndarray,
    chp_p: np.ndarray,
    fc_room: np.ndarray,
    fc_p: np.ndarray,
) -> float:
    """Raise the dispatchable units by up to ``need_kw`` in all, CHPs first, each within its
    room this step (kW); a unit that must jump to a minimum load (a start) is raised only when
    the need covers the jump. Returns the raise, kW."""
    raised = 0.0
    for c in range(chp_room.shape[0]):
        left = need_kw - raised
        if chp_room[c] > 0.0 and left > 0.0 and left >= chp_jump[c]:
            give = min(chp_room[c], left)
            chp_p[c] += give
            chp_room[c] -= give
            chp_jump[c] = 0.0
            raised += give
    for f in range(fc_room.shape[0]):
        left = need_kw - raised
        if fc_room[f] > 0.0 and left > 0.0:
            give = min(fc_room[f], left)
            fc_p[f] += give
            fc_room[f] -= give
            raised += give
    return raised


@njit
def run_steps(
    k0: int,
    k1: int,
    dt_h: float,
    f0: float,
    shed_below_hz: float,
    max_df_hz: float,
    max_dphi_deg: float,
    max_dv_pu: float,
    transfer_frac: float,
    ctts: bool,
    import_limit_kw: float,
    export_limit_kw: float,
    loss_ratio: float,
    ctrl_self_consumption: bool,
    ctrl_heat_led: bool,
    grid_up: np.ndarray,
    grid_v_pu: np.ndarray,
    grid_angle_deg: np.ndarray,
    ren_avail: np.ndarray,
    ren_group: np.ndarray,
    load_dem: np.ndarray,
    load_prio: np.ndarray,
    load_group: np.ndarray,
    heat_dem: np.ndarray,
    bat_par: np.ndarray,
    bat_group: np.ndarray,
    chp_par: np.ndarray,
    fc_par: np.ndarray,
    hs_par: np.ndarray,
    load_alive: np.ndarray,
    ren_alive: np.ndarray,
    bat_cmd: np.ndarray,
    chp_cmd: np.ndarray,
    fc_cmd: np.ndarray,
    soc: np.ndarray,
    chp_on: np.ndarray,
    chp_tmin: np.ndarray,
    chp_p: np.ndarray,
    fc_p: np.ndarray,
    hs_e: np.ndarray,
    shed: np.ndarray,
    state: np.ndarray,
    events: np.ndarray,
    out_ren: np.ndarray,
    out_load: np.ndarray,
    out_bat: np.ndarray,
    out_soc: np.ndarray,
    out_chp: np.ndarray,
    out_chp_heat: np.ndarray,
    out_fc: np.ndarray,
    out_hs: np.ndarray,
    out_boiler: np.ndarray,
    out_heat_unserved: np.ndarray,
    out_heat_dumped: np.ndarray,
    out_grid: np.ndarray,
    out_losses: np.ndarray,
    out_spill: np.ndarray,
    out_freq: np.ndarray,
    out_mode: np.ndarray,
) -> None:
    n_ren = ren_avail.shape[0]
    n_load = load_dem.shape[0]
    n_b = bat_par.shape[0]
    n_c = chp_par.shape[0]
    n_f = fc_par.shape[0]
    n_hs = hs_par.shape[0]
    n_groups = 1
    for i in range(n_load):
        n_groups = max(n_groups, load_group[i] + 1)
    for i in range(n_ren):
        n_groups = max(n_groups, ren_group[i] + 1)
    group_net = np.zeros(n_groups)
    served = np.zeros(n_load)
    ren = np.zeros(n_ren)
    bat_p = np.zeros(n_b)
    bat_floor = np.zeros(n_b)
    # what the island may still raise each dispatchable unit by this step (kW), and the minimum
    # load a unit that is off must jump to; the CHPs' state before the step
    chp_room = np.zeros(n_c)
    chp_jump = np.zeros(n_c)
    chp_was_on = np.zeros(n_c)
    chp_was_tmin = np.zeros(n_c)
    fc_room = np.zeros(n_f)
    dt_min = dt_h * 60.0
    alpha = 1.0 - math.exp(-dt_h * 3600.0 / SECONDARY_TAU_S)
    k_gf = 0.0  # kW per Hz of all grid-forming units
    for b in range(n_b):
        if bat_par[b, B_GF] > 0:
            k_gf += bat_par[b, B_PD] / (bat_par[b, B_DROOP] / 100.0 * f0)
    for c in range(n_c):
        if chp_par[c, C_GF] > 0:
            k_gf += chp_par[c, C_PMAX] / (chp_par[c, C_DROOP] / 100.0 * f0)
    f_hi = 2.0 * f0 - shed_below_hz

    for k in range(k0, k1):
        mode = int(state[M_MODE])
        up = grid_up[k] > 0
        interruption = 0.0
        if mode == GRID and not up:
            mode = ISLAND
            interruption = 0.0 if ctts else transfer_frac  # a CTTS hands over without a break
            state[M_PHASE] = 0.0
            _record(events, state, k, 1)  # grid lost, islanded
        elif mode != GRID and up:
            # the synchroniser slews the island's phase toward the utility's, within half the
            # frequency window; it closes when frequency, angle and voltage all pass the check
            diff = _wrap_deg(state[M_PHASE] - grid_angle_deg[k])
            slew = 360.0 * (max_df_hz / 2.0) * dt_h * 3600.0
            diff = math.copysign(max(0.0, abs(diff) - slew), diff)
            state[M_PHASE] = grid_angle_deg[k] + diff
            in_sync = (
                abs(state[M_FREQ] - f0) <= max_df_hz
                and abs(diff) <= max_dphi_deg
                and abs(1.0 - grid_v_pu[k]) <= max_dv_pu
            )
            if mode == BLACKOUT or in_sync:
                if mode == BLACKOUT or not ctts:
                    interruption = transfer_frac
                mode = GRID
                state[M_WAIT] = 0.0
                _record(events, state, k, 2)  # resynchronised
            elif state[M_WAIT] == 0.0:
                state[M_WAIT] = 1.0
                _record(events, state, k, 3)  # sync check not yet met
        if mode == GRID:
            for i in range(n_load):
                shed[i] = 0
        # -- renewables and loads as they are offered
        ren_total = 0.0
        for r in range(n_ren):
            ren[r] = ren_avail[r, k] if ren_alive[r] else 0.0
            ren_total += ren[r]
        served_total = 0.0
        for i in range(n_load):
            dead = shed[i] or not load_alive[i]
            served[i] = 0.0 if dead else load_dem[i, k] * (1.0 - interruption)
            served_total += served[i]
        # -- in island, while load is shed, units on their own modes hold what they were raised to
        hold = False
        if mode == ISLAND:
            for i in range(n_load):
                hold = hold or (shed[i] > 0 and load_alive[i] > 0)
        # -- fuel cells follow their setpoint within their ramp
        fc_total = 0.0
        for f in range(n_f):
            target = fc_cmd[f] if not math.isnan(fc_cmd[f]) else fc_par[f, F_PSET]
            if hold and math.isnan(fc_cmd[f]):
                target = max(target, fc_p[f])
            fc_room[f] = 0.0
            if target <= 0.0:  # a command of 0 stops the cell
                fc_p[f] = 0.0
            else:
                start = max(fc_p[f], fc_par[f, F_PMIN])
                ramp = fc_par[f, F_RAMP] * dt_min
                lo, hi = fc_par[f, F_PMIN], fc_par[f, F_PMAX]
                fc_p[f] = ramp_toward(start, target, ramp, lo, hi)
                if mode == ISLAND and math.isnan(fc_cmd[f]):
                    fc_room[f] = ramp_toward(start, hi, ramp, lo, hi) - fc_p[f]
            fc_total += fc_p[f]
        # -- CHPs not forming the island grid follow their heat-led law or command
        chp_fixed = 0.0
        for c in range(n_c):
            chp_room[c] = 0.0
            chp_jump[c] = 0.0
            if mode == ISLAND and chp_par[c, C_GF] > 0:
                continue
            h = int(chp_par[c, C_HS])
            req = chp_cmd[c]
            if math.isnan(req):
                req = 0.0
                if ctrl_heat_led and mode != BLACKOUT:
                    req = heat_led_chp_request_kw(
                        chp_on[c] > 0,
                        hs_e[h] / hs_par[h, H_CAP],
                        heat_dem[h, k],
                        hs_par[h, H_CAP],
                        chp_par[c, C_EEL],
                        chp_par[c, C_ETH],
                        chp_par[c, C_PMIN],
                        chp_par[c, C_PMAX],
                    )
            if mode == ISLAND and math.isnan(chp_cmd[c]):
                # the island may raise it: up its ramp if running (and keep it on), to its
                # minimum load if it may start
                ramp = chp_par[c, C_RAMP] * dt_min
                hi = 0.0
                lo = 0.0
                if chp_on[c] > 0:
                    hi = min(chp_par[c, C_PMAX], chp_p[c] + ramp)
                    lo = max(chp_par[c, C_PMIN], chp_p[c] - ramp)
                elif chp_tmin[c] >= chp_par[c, C_DOWN]:
                    hi = chp_par[c, C_PMIN]
                    lo = hi
                chp_was_on[c] = chp_on[c]
                chp_was_tmin[c] = chp_tmin[c]
                chp_room[c] = hi
                chp_jump[c] = lo
                if hold and chp_on[c] > 0:
                    req = max(req, chp_p[c])
            on, tmin, p = chp_step(
                chp_on[c] > 0,
                chp_tmin[c],
                chp_p[c],
                req,
                dt_min,
                chp_par[c, C_PMIN],
                chp_par[c, C_PMAX],
                chp_par[c, C_RAMP],
                chp_par[c, C_UP],
                chp_par[c, C_DOWN],
            )
            chp_on[c] = 1.0 if on else 0.0
            chp_tmin[c] = tmin
            chp_p[c] = p
            chp_room[c] = max(0.0, chp_room[c] - p)
            chp_jump[c] = 0.0 if p > 0.0 else chp_jump[c]
            chp_fixed += p
        # -- batteries behind a customer's meter: self-consumption of that customer
        for g in range(n_groups):
            group_net[g] = 0.0
        for i in range(n_load):
            if load_group[i] >= 0:
                group_net[load_group[i]] += served[i]
        for r in range(n_ren):
            if ren_group[r] >= 0:
                group_net[ren_group[r]] -= ren[r]
        bat_fixed = 0.0
        for b in range(n_b):
            bat_p[b] = 0.0
            if bat_group[b] < 0:
                continue
            req = bat_cmd[b]
            floor = 0.0
            if math.isnan(req):
                req = 0.0
                if ctrl_self_consumption:
                    req = self_consumption_request_kw(
                        group_net[bat_group[b]], soc[b], bat_par[b, B_RES], mode == GRID
                    )
                    floor = bat_par[b, B_RES] if mode == GRID else 0.0
            bat_p[b] = req
            bat_floor[b] = floor
            bat_fixed += req  # limits applied below
        for b in range(n_b):
            if bat_group[b] >= 0:
                p, s_after = _battery_step(soc, b, bat_p[b], dt_h, bat_par, bat_floor[b])
                bat_fixed += p - bat_p[b]
                bat_p[b] = p
                soc[b] = s_after
        spill = 0.0
        if mode == GRID:
            losses = loss_ratio * served_total
            pcc = served_total + losses - ren_total - fc_total - chp_fixed - bat_fixed
            for b in range(n_b):
                if bat_group[b] >= 0:
                    continue
                req = bat_cmd[b]
                floor = 0.0
                if math.isnan(req):
                    req = 0.0
                    if ctrl_self_consumption:
                        req = self_consumption_request_kw(pcc, soc[b], bat_par[b, B_RES], True)
                        floor = bat_par[b, B_RES]
                p, s_after = _battery_step(soc, b, req, dt_h, bat_par, floor)
                bat_p[b] = p
                soc[b] = s_after
                pcc -= p
            if pcc < -export_limit_kw and ren_total > 0.0:
                cut = min(-export_limit_kw - pcc, ren_total)
                for r in range(n_ren):
                    ren[r] *= 1.0 - cut / ren_total
                ren_total -= cut
                pcc += cut
            while pcc > import_limit_kw:
                j = _next_to_shed(shed, served, load_prio)
                if j < 0:
                    break
                shed[j] = 1
                pcc -= served[j] * (1.0 + loss_ratio)
                served_total -= served[j]
                served[j] = 0.0
            losses = loss_ratio * served_total
            gf_out = 0.0
            for b in range(n_b):
                if bat_par[b, B_GF] > 0:
                    gf_out += bat_p[b]
            for c in range(n_c):
                if chp_par[c, C_GF] > 0:
                    gf_out += chp_p[c]
            state[M_SSET] = gf_out
            state[M_FREQ] = f0
            out_grid[k] = pcc
            freq = f0
        else:
            # island or blackout: grid-forming units take the imbalance
            cap_up = 0.0
            cap_down = 0.0
            for b in range(n_b):
                if bat_par[b, B_GF] > 0:
                    mc, md = _battery_limits(soc, b, dt_h, bat_par)
                    cap_up += md
                    cap_down -= mc
            chp_lo = np.zeros(n_c)
            chp_hi = np.zeros(n_c)
            for c in range(n_c):
                if chp_par[c, C_GF] > 0:
                    if chp_on[c] > 0:
                        ramp = chp_par[c, C_RAMP] * dt_min
                        chp_lo[c] = max(chp_par[c, C_PMIN], chp_p[c] - ramp)
                        chp_hi[c] = min(chp_par[c, C_PMAX], chp_p[c] + ramp)
                    elif chp_tmin[c] >= chp_par[c, C_DOWN]:
                        chp_lo[c] = chp_par[c, C_PMIN]  # start: straight to minimum load
                        chp_hi[c] = chp_par[c, C_PMIN]
                    cap_up += chp_hi[c]
                    cap_down += chp_lo[c]
            if mode == BLACKOUT:
                # black start: pick up the critical loads alone if the units can
                crit = 0.0
                for i in range(n_load):
                    if not np.isfinite(load_prio[i]) and load_alive[i]:
                        crit += load_dem[i, k]
                if crit * (1.0 + loss_ratio) <= RESTORE_HEADROOM * cap_up and cap_up > 0.0:
                    mode = ISLAND
                    _record(events, state, k, 4)  # black start
                    served_total = 0.0
                    for i in range(n_load):
                        shed[i] = 1 if np.isfinite(load_prio[i]) else 0
                        served[i] = 0.0 if shed[i] or not load_alive[i] else load_dem[i, k]
                        served_total += served[i]
                    state[M_SSET] = crit
            s_set = state[M_SSET]
            d = served_total * (1.0 + loss_ratio) - ren_total - fc_total - chp_fixed - bat_fixed
            if mode == ISLAND and k_gf > 0.0:
                # raise the dispatchable units as far as the grid-forming units can take it
                d_floor = max(cap_down, s_set - (f_hi - f0) * k_gf)
                d -= _raise_units(d - d_floor, chp_room, chp_jump, chp_p, fc_room, fc_p)
                # bring back the most important shed load that fits in the headroom; the
                # secondary control takes it up with the breaker (pre-dispatch), so f holds
                if abs(state[M_FREQ] - f0) < (f0 - shed_below_hz):
                    best = -1
                    for i in range(n_load):
                        extra = load_dem[i, k] * (1.0 + loss_ratio)
                        fits = shed[i] and load_alive[i] and d + extra <= RESTORE_HEADROOM * cap_up
                        if fits and (best < 0 or load_prio[i] > load_prio[best]):
                            best = i
                    if best >= 0:
                        extra = load_dem[best, k] * (1.0 + loss_ratio)
                        shed[best] = 0
                        served[best] = load_dem[best, k]
                        served_total += served[best]
                        d += extra
                        s_set += extra
                # what the restored load needs of the units' room; shedding only for what is left
                d_floor = max(cap_down, s_set - (f_hi - f0) * k_gf)
                d -= _raise_units(d - d_floor, chp_room, chp_jump, chp_p, fc_room, fc_p)
                for c in range(n_c):
                    if chp_par[c, C_GF] == 0 and chp_p[c] > 0.0 and chp_on[c] == 0.0:
                        # raised from off: it started, or it was kept on
                        chp_on[c] = 1.0
                        chp_tmin[c] = chp_was_tmin[c] + dt_min if chp_was_on[c] > 0 else dt_min
                # shed by priority while the frequency would fall too far or supply is short
                while d > cap_up or (f0 - (d - s_set) / k_gf) < shed_below_hz:
                    j = _next_to_shed(shed, served, load_prio)
                    if j < 0:
                        break
                    shed[j] = 1
                    d -= served[j] * (1.0 + loss_ratio)
                    served_total -= served[j]
                    served[j] = 0.0
                # curtail renewables while the frequency would rise too far or there is surplus
                need = max(cap_down - d, s_set - (f_hi - f0) * k_gf - d)
                need = min(need, cap_up - d)  # never curtail into a shortage
                if need > 0.0 and ren_total > 0.0:
                    cut = min(need, ren_total)
                    for r in range(n_ren):
                        ren[r] *= 1.0 - cut / ren_total
                    ren_total -= cut
                    d += cut
                if d < cap_down:
                    spill = cap_down - d
                    d = cap_down
            if mode == BLACKOUT or d > cap_up + 1e-9 or k_gf == 0.0:
                if mode != BLACKOUT:
                    _record(events, state, k, 5)  # blackout
                mode = BLACKOUT
                for i in range(n_load):
                    shed[i] = 1
                    served[i] = 0.0
                served_total = 0.0
                for r in range(n_ren):
                    ren[r] = 0.0
                ren_total = 0.0
                fc_total = 0.0
                for f in range(n_f):
                    fc_p[f] = 0.0
                for b in range(n_b):
                    bat_p[b] = 0.0
                bat_fixed = 0.0
                chp_fixed = 0.0
                for c in range(n_c):
                    chp_on[c] = 0.0
                    chp_p[c] = 0.0
                spill = 0.0
                d = 0.0
                freq = 0.0
                out_grid[k] = 0.0
                losses = 0.0
            else:
                # secondary control: the grid-forming CHPs carry what they can within their
                # ramp, the batteries take the rest (and back the CHPs down if they cannot)
                k_chp = 0.0
                for c in range(n_c):
                    if chp_par[c, C_GF] > 0:
                        k_chp += chp_par[c, C_PMAX] / (chp_par[c, C_DROOP] / 100.0 * f0)
                remaining = d
                for c in range(n_c):
                    if chp_par[c, C_GF] > 0:
                        remaining -= chp_hi[c]
                        chp_p[c] = chp_hi[c]
                bat_room_up = cap_up
                bat_room_down = cap_down
                for c in range(n_c):
                    bat_room_up -= chp_hi[c]
                    bat_room_down -= chp_lo[c]
                if remaining > bat_room_up or remaining < bat_room_down:
                    target = min(max(remaining, bat_room_down), bat_room_up)
                    excess = remaining - target
                    for c in range(n_c):
                        if chp_par[c, C_GF] > 0 and excess != 0.0:
                            p = min(max(chp_p[c] + excess, chp_lo[c]), chp_hi[c])
                            excess -= p - chp_p[c]
                            chp_p[c] = p
                    remaining = target
                for c in range(n_c):
                    if chp_par[c, C_GF] > 0:
                        was_on = chp_on[c] > 0
                        chp_tmin[c] = chp_tmin[c] + dt_min if was_on or chp_p[c] == 0.0 else dt_min
                        chp_on[c] = 1.0 if chp_p[c] > 0.0 else chp_on[c]
                        chp_fixed += chp_p[c]
                # batteries: share by their droop weights within each one's limits
                k_bat = k_gf - k_chp
                left = remaining
                for b in range(n_b):
                    if bat_par[b, B_GF] > 0:
                        share = (
                            remaining
                            * (bat_par[b, B_PD] / (bat_par[b, B_DROOP] / 100.0 * f0))
                            / k_bat
                        )
                        p, s_after = _battery_step(soc, b, share, dt_h, bat_par)
                        bat_p[b] = p
                        soc[b] = s_after
                        left -= p
                if abs(left) > 1e-9:
                    # a battery at its limit: the others absorb the difference if they can
                    for b in range(n_b):
                        if bat_par[b, B_GF] > 0 and abs(left) > 1e-12:
                            p, s_after = _battery_step(soc, b, left, dt_h, bat_par)
                            bat_p[b] += p
                            soc[b] = s_after
                            left -= p
                    spill += -left if left < 0.0 else 0.0
                # reported at the end of the step, after secondary control acted for one step
                state[M_SSET] = s_set + alpha * (d - s_set)
                freq = f0 - (d - state[M_SSET]) / k_gf
                losses = loss_ratio * served_total
                out_grid[k] = 0.0
            state[M_FREQ] = freq
            if mode == ISLAND:
                state[M_PHASE] = _wrap_deg(state[M_PHASE] + 360.0 * (freq - f0) * dt_h * 3600.0)
        # heat: CHP heat into its store, demand out, boiler backs up
        for h in range(n_hs):
            q_in = 0.0
            for c in range(n_c):
                if int(chp_par[c, C_HS]) == h:
                    q_in += chp_heat_kw(chp_p[c], chp_par[c, C_EEL], chp_par[c, C_ETH])
            e, _loss, boiler, dumped, unserved = heat_storage_step(
                hs_e[h],
                q_in,
                heat_dem[h, k],
                dt_h,
                hs_par[h, H_CAP],
                hs_par[h, H_LOSS],
                hs_par[h, H_BOILER],
            )
            hs_e[h] = e
            out_hs[h, k] = e
            out_boiler[h, k] = boiler / dt_h
            out_heat_dumped[h, k] = dumped / dt_h
            out_heat_unserved[h, k] = unserved / dt_h
        for r in range(n_ren):
            out_ren[r, k] = ren[r]
        for i in range(n_load):
            out_load[i, k] = served[i]
        for b in range(n_b):
            out_bat[b, k] = bat_p[b]
            out_soc[b, k] = soc[b]
        for c in range(n_c):
            out_chp[c, k] = chp_p[c]
            out_chp_heat[c, k] = chp_heat_kw(chp_p[c], chp_par[c, C_EEL], chp_par[c, C_ETH])
        for f in range(n_f):
            out_fc[f, k] = fc_p[f]
        out_losses[k] = losses
        out_spill[k] = spill
        out_freq[k] = freq
        out_mode[k] = mode
        state[M_MODE] = mode
