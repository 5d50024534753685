"""Write a simulation's results: summary.json, the time series as Parquet, and report.html."""

from __future__ import annotations

import base64
import html
import io
import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from openmeg.sim.engine import Engine
from openmeg.sim.metering import MeterMap, sensor_series
from openmeg.sim.physics.meters import interval_energy_kwh


def time_series(engine: Engine) -> pd.DataFrame:
    """One row per step: MEG totals, every device's power (kW), states of charge, frequency."""
    p, o = engine.plant, engine.out
    cols: dict[str, Any] = {
        "grid_kw": o.grid,
        "load_kw": o.load.sum(axis=0),
        "demand_kw": p.load_dem.sum(axis=0),
        "losses_kw": o.losses,
        "frequency_hz": o.freq,
        "mode": o.mode.astype(np.int8),
    }
    for rows, ids, sign in (
        (o.ren, p.ren_ids, 1),
        (o.load, p.load_ids, -1),
        (o.bat, p.bat_ids, 1),
        (o.chp, p.chp_ids, 1),
        (o.fc, p.fc_ids, 1),
    ):
        for i, d in enumerate(ids):
            cols[f"{d}.p_kw"] = (sign * rows[i]).astype(np.float32)
    for i, d in enumerate(p.bat_ids):
        cols[f"{d}.soc"] = o.soc[i].astype(np.float32)
    for i, d in enumerate(p.hs_ids):
        cols[f"{d}.energy_kwh"] = o.hs[i].astype(np.float32)
    sensors = sensor_series(engine.site, p, o, slice(0, engine.k))
    for sensor, (temp, vib, noise) in sensors.items():
        cols[f"{sensor}.temperature_c"] = temp.astype(np.float32)
        cols[f"{sensor}.vibration_mm_s"] = vib.astype(np.float32)
        cols[f"{sensor}.noise_db"] = noise.astype(np.float32)
    return pd.DataFrame(cols, index=pd.Index(p.index, name="ts"))


def meter_intervals(engine: Engine, interval_min: int = 15) -> pd.DataFrame:
    """Interval import and export energy (kWh) of every meter, one row per meter and interval."""
    p = engine.plant
    steps_per_interval = round(interval_min * 60 / p.step_s)
    if steps_per_interval < 1 or round(interval_min * 60) % round(p.step_s):
        raise ValueError(f"a {interval_min}-minute interval is not a whole number of steps")
    starts = p.index[: engine.k : steps_per_interval]
    frames = []
    for meter, net in MeterMap.of(engine.site, p).import_kw(engine.out, slice(0, engine.k)).items():
        imp, exp = interval_energy_kwh(net, p.dt_h, steps_per_interval)
        frames.append(
            pd.DataFrame(
                {
                    "meter": meter,
                    "interval_start": starts[: imp.size],
                    "import_kwh": imp,
                    "export_kwh": exp,
                }
            )
        )
    return pd.concat(frames, ignore_index=True)


def meter_readings(engine: Engine, interval_min: int = 15) -> pd.DataFrame:
    """The meter file ``meters.parquet``: one row per meter, channel and interval, in the
    columns ``openmeg meters import`` reads (``meter``, ``channel`` ``import`` or ``export``,
    ``interval_start`` UTC, ``value_kwh`` kWh), in the site's order of meters, then time,
    import before export (see docs/meter-data.md)."""
    wide = meter_intervals(engine, interval_min)
    n = len(wide)
    return pd.DataFrame(
        {
            "meter": np.repeat(wide["meter"].to_numpy(), 2),
            "channel": np.tile(np.array(["import", "export"], dtype=object), n),
            "interval_start": pd.DatetimeIndex(wide["interval_start"]).repeat(2),
            "value_kwh": np.column_stack(
                [wide["import_kwh"].to_numpy(), wide["export_kwh"].to_numpy()]
            ).ravel(),
        }
    )


def _png(fig: Any) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90, bbox_inches="tight")
    return base64.b64encode(buf.getvalue()).decode()


def _figures(frame: pd.DataFrame, engine: Engine) -> list[tuple[str, str]]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.dates as mdates
    import matplotlib.pyplot as plt

    p = engine.plant
    figs: list[tuple[str, str]] = []
    daily = frame.resample("1D")
    kwh = p.dt_h
    sources = {
        "PV": sum(
            frame[f"{d}.p_kw"] for d, k in zip(p.ren_ids, p.ren_kind, strict=True) if k == "pv"
        ),
        "wind": sum(
            frame[f"{d}.p_kw"] for d, k in zip(p.ren_ids, p.ren_kind, strict=True) if k == "wind"
        ),
        "CHP": sum(frame[f"{d}.p_kw"] for d in p.chp_ids),
        "fuel cell": sum(frame[f"{d}.p_kw"] for d in p.fc_ids),
        "import": frame["grid_kw"].clip(lower=0),
    }
    sinks = {
        "export": -frame["grid_kw"].clip(upper=0),
        "storage charge": -sum(frame[f"{d}.p_kw"].clip(upper=0) for d in p.bat_ids),
    }
    sources["storage discharge"] = sum(frame[f"{d}.p_kw"].clip(lower=0) for d in p.bat_ids)
    fig, ax = plt.subplots(figsize=(11, 4.5))
    for sign, group in ((1.0, sources), (-1.0, sinks)):
        bottom = np.zeros(len(daily["load_kw"].sum()))
        for name, series in group.items():
            if isinstance(series, int):
                continue
            day_kwh = np.asarray(series.resample("1D").sum()) * kwh * sign
            ax.bar(daily["load_kw"].sum().index, day_kwh, bottom=bottom, label=name, width=1.0)
            bottom = bottom + day_kwh
    ax.plot(
        daily["load_kw"].sum().index,
        daily["load_kw"].sum().values * kwh,
        "k-",
        lw=1,
        label="served load",
    )
    ax.axhline(0, color="k", lw=0.5)
    ax.set_ylabel("kWh per day (sinks below zero)")
    ax.set_title("Energy balance: where each day's energy came from and went")
    ax.legend(ncol=4, fontsize=8)
    figs.append(("Energy balance", _png(fig)))
    plt.close(fig)

    fig, ax = plt.subplots(figsize=(11, 3))
    hourly = frame.resample("1h").mean()
    for d in p.bat_ids:
        ax.plot(hourly.index, hourly[f"{d}.soc"] * 100, lw=0.7, label=d)
    ax.set_ylabel("state of charge, %")
    ax.set_title("Battery state of charge (hourly mean)")
    ax.legend(fontsize=8)
    figs.append(("State of charge", _png(fig)))
    plt.close(fig)

    fig, ax = plt.subplots(figsize=(11, 3))
    ax.fill_between(
        hourly.index, hourly["grid_kw"].clip(lower=0), color="tab:red", lw=0, label="import"
    )
    ax.fill_between(
        hourly.index, hourly["grid_kw"].clip(upper=0), color="tab:green", lw=0, label="export"
    )
    ax.set_ylabel("kW")
    ax.set_title("Exchange with the utility grid at the point of common coupling (hourly mean)")
    ax.legend(fontsize=8)
    figs.append(("Grid exchange", _png(fig)))
    plt.close(fig)

    island = frame["mode"].to_numpy() != 0
    if island.any():
        starts = np.flatnonzero(np.diff(np.concatenate(([0], island.astype(int)))) == 1)
        fig, axes = plt.subplots(1, len(starts), figsize=(11, 3), squeeze=False)
        step = pd.Timedelta(seconds=p.step_s)
        for ax, s in zip(axes[0], starts, strict=True):
            e = s + int(np.argmax(~island[s:])) if (~island[s:]).any() else len(island)
            window = frame.iloc[max(0, s - 10) : min(len(frame), e + 10)]
            f = window["frequency_hz"].where(window["mode"] != 0, engine.f0)
            ax.plot(window.index, f, lw=1)
            ax.axhspan(
                engine.plant.scenario.simulation.f_min_hz_ok,
                engine.plant.scenario.simulation.f_max_hz_ok,
                color="tab:green",
                alpha=0.1,
            )
            ax.set_title(f"island from {frame.index[s]:%Y-%m-%d %H:%M} UTC", fontsize=8)
            locator = mdates.AutoDateLocator(minticks=3, maxticks=5)  # type: ignore[no-untyped-call]
            ax.xaxis.set_major_locator(locator)
            ax.xaxis.set_major_formatter(mdates.DateFormatter("%H:%M"))  # type: ignore[no-untyped-call]
            ax.tick_params(labelsize=7)
            ax.set_xlim(window.index[0], window.index[-1] + step)
        axes[0][0].set_ylabel("Hz")
        figs.append(("Frequency during island periods", _png(fig)))
        plt.close(fig)
    return figs


def write_results(engine: Engine, summary: dict[str, Any], out_dir: Path) -> dict[str, Path]:
    """Write ``summary.json``, ``timeseries.parquet`` and ``report.html`` into ``out_dir``."""
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {
        "summary": out_dir / "summary.json",
        "timeseries": out_dir / "timeseries.parquet",
        "meters": out_dir / "meters.parquet",
        "report": out_dir / "report.html",
    }
    paths["summary"].write_text(json.dumps(summary, indent=2) + "\n")
    frame = time_series(engine)
    frame.to_parquet(paths["timeseries"], compression="zstd")
    meter_readings(engine).to_parquet(paths["meters"], compression="zstd")
    rows = "".join(
        f"<tr><th>{html.escape(k)}</th><td>{html.escape(str(v))}</td></tr>"
        for k, v in summary.items()
        if not isinstance(v, dict | list)
    )
    imgs = "".join(
        f'<h2>{html.escape(t)}</h2><img alt="{html.escape(t)}" src="data:image/png;base64,{b64}">'
        for t, b64 in _figures(frame, engine)
    )
    events = "".join(
        f"<li>{html.escape(e['ts'])}: {html.escape(e['text'])}</li>" for e in summary["events"]
    )
    paths["report"].write_text(
        "<!doctype html><html><head><meta charset='utf-8'>"
        f"<title>openmeg simulation: {html.escape(summary['site'])}</title>"
        "<style>body{font-family:sans-serif;max-width:1100px;margin:auto}"
        "th{text-align:left;padding-right:2em}img{max-width:100%}</style></head><body>"
        f"<h1>Simulation of {html.escape(engine.site.site.name)}</h1><table>{rows}</table>"
        f"<h2>Events</h2><ul>{events or '<li>none</li>'}</ul>{imgs}</body></html>\n"
    )
    return paths
