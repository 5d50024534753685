"""Write a simulation's results: summary.json, the time series as Parquet, and report.html."""

from __future__ import annotations

import base64
import html
import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from openmeg.sim import report_figures as figures
from openmeg.sim import report_html as tables
from openmeg.sim.engine import Engine
from openmeg.sim.metering import MeterMap, sensor_series
from openmeg.sim.physics.meters import interval_energy_kwh
from openmeg.sim.report_figures import Figure
from openmeg.sim.report_study import bus_voltages


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


def _figures(frame: pd.DataFrame, engine: Engine, summary: dict[str, Any]) -> list[Figure]:
    """The report's figures, in the order they are shown."""
    p, site = engine.plant, engine.site
    tz = site.site.timezone
    index, vm = bus_voltages(engine)
    figs: list[Figure | None] = [
        figures.monthly_energy(summary, site),
        figures.pcc_duration(frame, p.dt_h),
        figures.pcc_typical_week(frame, tz),
        figures.state_of_charge(frame, site, p.bat_ids, tz) if p.bat_ids else None,
        figures.heat(frame, site, p.hs_ids, p.chp_ids, p.dt_h, tz) if p.hs_ids else None,
        figures.voltage_profile(index, vm, engine.bus_names, tz, summary["voltage"]["violations"]),
        figures.island_frequency(
            frame,
            engine.f0,
            p.scenario.simulation.frequency_band(engine.f0),
            p.step_s,
            tz,
        ),
    ]
    return [fig for fig in figs if fig is not None]


STYLE = (
    "body{font-family:sans-serif;max-width:1200px;margin:auto;padding:0 1em}"
    "table{border-collapse:collapse;margin:0.5em 0 1.5em;font-size:0.85em}"
    "caption{text-align:left;font-weight:bold;padding:0.3em 0}"
    "th,td{padding:0.15em 0.6em;border-bottom:1px solid #ddd}th{text-align:left;white-space:nowrap}"
    "td{text-align:right;white-space:nowrap}img{max-width:100%}"
    ".wide{overflow-x:auto}"
)


def report_html(engine: Engine, summary: dict[str, Any], frame: pd.DataFrame) -> str:
    """The whole report: tables from ``summary``, figures from the series."""
    site, s = engine.site, summary
    imgs = {
        title: f'<figure><img alt="{html.escape(title)}" '
        f'src="data:image/png;base64,{base64.b64encode(png).decode()}"></figure>'
        for title, png in _figures(frame, engine, summary)
    }

    def section(title: str, *parts: str) -> str:
        return f"<h2>{html.escape(title)}</h2>" + "".join(parts)

    def img(title: str) -> str:
        return imgs.get(title, "")

    tz = site.site.timezone
    body = [
        f"<h1>Simulation of {html.escape(site.site.name)}</h1>",
        f"<p>All times in the site's time zone, {html.escape(tz)}. Power into the MEG bus is "
        "positive; in the tables, consumption is shown as a positive amount consumed.</p>",
        tables.summary_table(s),
        section(
            "Energy per month",
            img("Monthly energy per device"),
            f'<div class="wide">{tables.monthly_table(s, site)}</div>',
        ),
        section(
            "Generators",
            "<p>Capacity factor: energy over the AC rating running for the whole run; "
            "full-load hours: energy over the AC rating; specific yield (PV): energy over the "
            "DC rating at STC.</p>",
            tables.generators_table(s, site),
        ),
        section(
            "Exchange with the utility grid",
            img("Grid exchange: duration curve"),
            img("Grid exchange: typical week"),
        ),
        section(
            "Storage",
            img("Battery state of charge: daily band"),
            tables.battery_table(s, site),
        ),
        section(
            "CHP and heat",
            img("CHP and heat store"),
            tables.chp_table(s, site),
            tables.heat_store_table(s, site),
        ),
        section(
            "Voltages",
            f"<p>Bus voltages of the power flow run every "
            f"{s['voltage']['interval_min']} min, each taken as its 10-minute mean. EN 50160 asks "
            "that 95 % of a week's 10-minute means lie within Un ± 10 % and none below Un - 15 % "
            "or above Un + 10 %; every value outside Un ± 10 % is listed below, with whether its "
            "week breaks the standard.</p>",
            img("Voltage profile"),
            tables.voltage_table(s),
            tables.failing_weeks_table(s),
        ),
        section(
            "Outages",
            tables.outage_table(s, site),
            img("Frequency during island periods"),
        ),
        section("Events", tables.events_list(s)),
    ]
    return (
        "<!doctype html><html><head><meta charset='utf-8'>"
        f"<title>openmeg simulation: {html.escape(s['site'])}</title>"
        f"<style>{STYLE}</style></head><body>{''.join(body)}</body></html>\n"
    )


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
    paths["report"].write_text(report_html(engine, summary, frame))
    return paths
