"""The study report's figures (matplotlib, Agg), all in the site's local time, legends outside
the data, axes with units; each returns ``(title, png bytes)``."""

from __future__ import annotations

import io
from typing import Any

import numpy as np
import pandas as pd

from openmeg.sim.report_format import device_name
from openmeg.sim.report_tables import daily_min_max, duration_curve, hour_of_week_quantiles

Figure = tuple[str, bytes]
WIDE = (11.0, 3.6)
SINKS = {"load": "loads", "ev_charger": "EV chargers", "shiftable_load": "shiftable loads"}
OUTSIDE = {"loc": "upper left", "bbox_to_anchor": (1.01, 1.0), "fontsize": 8, "frameon": False}


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _png(fig: Any) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90, bbox_inches="tight")
    _pyplot().close(fig)
    return buf.getvalue()


def _naive_local(index: pd.DatetimeIndex, timezone: str) -> pd.DatetimeIndex:
    """Wall-clock times of the site (matplotlib would draw aware times in UTC)."""
    return index.tz_convert(timezone).tz_localize(None)


def monthly_energy(summary: dict[str, Any], site: Any) -> Figure:
    """Stacked bars of each month's energy: sources above zero per generator, the grid import
    and battery discharge; sinks below zero by kind, battery charge and the export."""
    plt = _pyplot()
    months = summary["monthly_energy_kwh"]
    labels = list(months)
    gens = list(summary["generators"])
    kinds = {d.id: d.kind for d in site.devices}
    up: dict[str, np.ndarray] = {
        device_name(site, g): np.array([months[m][g] for m in labels]) for g in gens
    }
    down: dict[str, np.ndarray] = {}
    for d in months[labels[0]] if labels else {}:
        if d in summary["generators"]:
            continue
        v = np.array([months[m][d] for m in labels])
        if kinds[d] == "battery":
            up["battery discharge"] = up.get("battery discharge", 0) + np.clip(v, 0, None)
            down["battery charge"] = down.get("battery charge", 0) + np.clip(v, None, 0)
        else:
            key = SINKS.get(kinds[d], kinds[d])
            down[key] = down.get(key, 0) + v
    monthly_grid = summary.get("monthly_grid_kwh", {})
    if monthly_grid:
        up["grid import"] = np.array([monthly_grid[m]["import_kwh"] for m in labels])
        down["grid export"] = -np.array([monthly_grid[m]["export_kwh"] for m in labels])
    fig, ax = plt.subplots(figsize=(11, 4.5))
    cmap = plt.get_cmap("tab20")
    x = np.arange(len(labels))
    for n, group in enumerate((up, down)):
        bottom = np.zeros(len(labels))
        for i, (name, v) in enumerate(group.items()):
            ax.bar(x, v, bottom=bottom, label=name, color=cmap((i + 13 * n) % 20), width=0.8)
            bottom = bottom + v
    ax.axhline(0, color="k", lw=0.6)
    ax.set_xticks(x, labels, rotation=0, fontsize=8)
    ax.set_xlabel(f"month (local time, {summary['timezone']})")
    ax.set_ylabel("energy per month, kWh (sinks below zero)")
    ax.legend(**OUTSIDE)
    return "Monthly energy per device", _png(fig)


def pcc_duration(frame: pd.DataFrame, dt_h: float) -> Figure:
    """The PCC exchange sorted from the largest import to the largest export."""
    plt = _pyplot()
    curve = duration_curve(frame["grid_kw"].to_numpy())
    hours = np.arange(curve.size) * dt_h
    if curve.size > 4000:  # a drawn curve needs no more points than the figure has pixels
        keep = np.unique(np.linspace(0, curve.size - 1, 4000).round().astype(int))
        curve, hours = curve[keep], hours[keep]
    fig, ax = plt.subplots(figsize=WIDE)
    ax.fill_between(hours, curve.clip(min=0), color="tab:red", lw=0, label="import")
    ax.fill_between(hours, curve.clip(max=0), color="tab:green", lw=0, label="export")
    ax.plot(hours, curve, "k-", lw=0.8)
    ax.axhline(0, color="k", lw=0.5)
    ax.set_xlabel("hours of the run at or above the power")
    ax.set_ylabel("exchange at the PCC, kW (import +)")
    ax.set_xlim(0, max(hours[-1], dt_h) if hours.size else 1)
    ax.legend(**OUTSIDE)
    return "Grid exchange: duration curve", _png(fig)


def pcc_typical_week(frame: pd.DataFrame, timezone: str) -> Figure:
    """Median and 10-90 % band of the PCC exchange per hour of the week, local time."""
    plt = _pyplot()
    q = hour_of_week_quantiles(frame.index.tz_convert(timezone), frame["grid_kw"].to_numpy())
    h = np.arange(168)
    fig, ax = plt.subplots(figsize=WIDE)
    ax.fill_between(h, q[0.1], q[0.9], color="tab:blue", alpha=0.25, lw=0, label="10-90 % of weeks")
    ax.plot(h, q[0.5], color="tab:blue", lw=1.2, label="median")
    ax.axhline(0, color="k", lw=0.5)
    ax.set_xticks(np.arange(0, 168, 24), ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"])
    ax.set_xlim(0, 167)
    ax.set_xlabel(f"hour of the week (local time, {timezone})")
    ax.set_ylabel("exchange at the PCC, kW (import +)")
    ax.legend(**OUTSIDE)
    return "Grid exchange: typical week", _png(fig)


def _band(ax: Any, band: pd.DataFrame, color: str, label: str, scale: float = 1.0) -> None:
    """A daily min-max band: a filled step band with its edges drawn."""
    x = band.index.append(pd.DatetimeIndex([band.index[-1] + pd.Timedelta(days=1)]))
    lo = np.append(band["min"].to_numpy(), band["min"].to_numpy()[-1]) * scale
    hi = np.append(band["max"].to_numpy(), band["max"].to_numpy()[-1]) * scale
    ax.fill_between(x, lo, hi, step="post", color=color, alpha=0.35, lw=0, label=label)
    ax.step(x, lo, where="post", color=color, lw=0.5)
    ax.step(x, hi, where="post", color=color, lw=0.5)


def state_of_charge(frame: pd.DataFrame, site: Any, bat_ids: list[str], timezone: str) -> Figure:
    """Each battery's daily minimum and maximum state of charge, one panel per battery."""
    plt = _pyplot()
    local = frame.index.tz_convert(timezone)
    fig, axes = plt.subplots(
        len(bat_ids), 1, figsize=(11, 1.0 + 1.7 * len(bat_ids)), sharex=True, squeeze=False
    )
    for i, (ax, d) in enumerate(zip(axes[:, 0], bat_ids, strict=True)):
        band = daily_min_max(local, frame[f"{d}.soc"].to_numpy())
        _band(ax, band, f"C{i}", f"{device_name(site, d)}: daily min-max", 100.0)
        ax.set_ylim(0, 100)
        ax.set_ylabel("SoC, %")
        ax.legend(**OUTSIDE)
    axes[-1, 0].set_xlabel(f"day (local time, {timezone})")
    return "Battery state of charge: daily band", _png(fig)


def heat(
    frame: pd.DataFrame,
    site: Any,
    hs_ids: list[str],
    chp_ids: list[str],
    dt_h: float,
    timezone: str,
) -> Figure:
    """The heat stores' daily level band, and the CHPs' running hours per day."""
    plt = _pyplot()
    local = frame.index.tz_convert(timezone)
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(11, 5), sharex=True)
    for i, d in enumerate(hs_ids):
        band = daily_min_max(local, frame[f"{d}.energy_kwh"].to_numpy())
        _band(top, band, f"C{i}", f"{device_name(site, d)}: daily min-max")
    top.set_ylabel("heat stored, kWh")
    top.legend(**OUTSIDE)
    naive = local.tz_localize(None)
    for i, d in enumerate(chp_ids):
        running = (
            pd.Series((frame[f"{d}.p_kw"].to_numpy() > 0) * dt_h, index=naive).resample("1D").sum()
        )
        bottom.bar(
            running.index,
            running.to_numpy(),
            width=1.0,
            align="edge",
            color=f"C{i + 3}",
            label=device_name(site, d),
        )
    bottom.set_ylabel("running hours per day, h")
    bottom.set_ylim(0, 24)
    bottom.set_xlabel(f"day (local time, {timezone})")
    bottom.legend(**OUTSIDE)
    return "CHP and heat store", _png(fig)


def voltage_profile(
    index: pd.DatetimeIndex,
    vm: np.ndarray,
    buses: list[str],
    timezone: str,
    flagged: list[dict[str, Any]],
) -> Figure:
    """Daily minimum of the lowest bus and maximum of the highest, with the EN 50160 limits and
    each flagged excursion marked."""
    plt = _pyplot()
    local = index.tz_convert(timezone)
    fig, ax = plt.subplots(figsize=WIDE)
    if vm.size:
        band = pd.DataFrame(
            {
                "min": daily_min_max(local, vm.min(axis=1))["min"],
                "max": daily_min_max(local, vm.max(axis=1))["max"],
            }
        )
        _band(ax, band, "tab:blue", "daily: lowest bus min to highest bus max")
    for y, text, style in (
        (0.9, "Un - 10 %", "--"),
        (1.1, "Un + 10 %", "--"),
        (0.85, "Un - 15 %", ":"),
    ):
        ax.axhline(y, color="tab:red", lw=0.8, ls=style, label=f"EN 50160: {text}")
    if flagged:
        at = _naive_local(pd.DatetimeIndex([pd.Timestamp(v["start"]) for v in flagged]), timezone)
        ax.plot(at, [v["extreme_pu"] for v in flagged], "rv", ms=6, label="violation (table below)")
    ax.set_ylabel("voltage, p.u. of Un")
    ax.set_xlabel(f"day (local time, {timezone})")
    ax.set_ylim(0.83, 1.12)
    ax.legend(**OUTSIDE)
    return "Voltage profile", _png(fig)


def island_frequency(
    frame: pd.DataFrame, f0: float, f_ok: tuple[float, float], step_s: float, timezone: str
) -> Figure | None:
    """The frequency around each island period (local time), or ``None`` without any."""
    import matplotlib.dates as mdates

    plt = _pyplot()
    island = frame["mode"].to_numpy() != 0
    if not island.any():
        return None
    starts = np.flatnonzero(np.diff(np.concatenate(([0], island.astype(int)))) == 1)
    fig, axes = plt.subplots(1, len(starts), figsize=(11, 3), squeeze=False)
    step = pd.Timedelta(seconds=step_s)
    local = frame.set_axis(_naive_local(pd.DatetimeIndex(frame.index), timezone))
    for ax, s in zip(axes[0], starts, strict=True):
        e = s + int(np.argmax(~island[s:])) if (~island[s:]).any() else len(island)
        window = local.iloc[max(0, s - 10) : min(len(local), e + 10)]
        ax.plot(window.index, window["frequency_hz"].where(window["mode"] != 0, f0), lw=1)
        ax.axhspan(*f_ok, color="tab:green", alpha=0.1)
        ax.set_title(f"island from {local.index[s]:%Y-%m-%d %H:%M} local", fontsize=8)
        ax.xaxis.set_major_locator(mdates.AutoDateLocator(minticks=3, maxticks=5))  # type: ignore[no-untyped-call]
        ax.xaxis.set_major_formatter(mdates.DateFormatter("%H:%M"))  # type: ignore[no-untyped-call]
        ax.tick_params(labelsize=7)
        ax.set_xlim(window.index[0], window.index[-1] + step)
        ax.set_xlabel(f"local time ({timezone})", fontsize=7)
    axes[0][0].set_ylabel("frequency, Hz")
    return "Frequency during island periods", _png(fig)
