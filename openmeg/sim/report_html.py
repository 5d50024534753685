"""The study report's tables as HTML, from ``summary.json``: names for people, units, sensible
rounding, local times. Every number cell carries ``data-key``, the path of its value in the
summary (``energy_kwh/pv-h01``), and ``data-factor`` where the value is shown multiplied (``-1``
for a consumption shown positive, ``100`` for a fraction shown in %)."""

from __future__ import annotations

import html
from collections.abc import Callable
from typing import Any

from openmeg.core.site import Site
from openmeg.sim import report_format as f

Cell = tuple[str, str | None, float]
"""A cell: its text, the summary key of its number (or None), the factor it is shown with."""


def _cell(text: str, key: str | None = None, factor: float = 1) -> Cell:
    return text, key, factor


def _num(summary: dict[str, Any], key: str, fmt: Callable[[float], str], sign: int = 1) -> Cell:
    """The number at ``key``, times ``sign``, written by ``fmt`` (:func:`f.percent` shows
    a fraction in %)."""
    factor = sign * (100 if fmt is f.percent else 1)
    return _cell(fmt(sign * f.get_path(summary, key)), key, factor)


def table(table_id: str, caption: str, head: list[str], rows: list[list[Cell]]) -> str:
    """An HTML table; the first cell of each row is its header."""
    out = [f'<table id="{table_id}"><caption>{html.escape(caption)}</caption><thead><tr>']
    out += [f"<th>{html.escape(h)}</th>" for h in head]
    out.append("</tr></thead><tbody>")
    for row in rows:
        out.append("<tr>")
        for i, (text, key, factor) in enumerate(row):
            tag = "th" if i == 0 else "td"
            attrs = f' data-key="{html.escape(key)}"' if key else ""
            attrs += f' data-factor="{factor:g}"' if key and factor != 1 else ""
            out.append(f"<{tag}{attrs}>{html.escape(text)}</{tag}>")
        out.append("</tr>")
    if not rows:
        out.append(f'<tr><td colspan="{len(head)}">none</td></tr>')
    out.append("</tbody></table>")
    return "".join(out)


def summary_table(s: dict[str, Any]) -> str:
    """The run at a glance."""
    tz = s["timezone"]
    v = s["voltage"]
    rows: list[list[Cell]] = [
        [_cell("First instant"), _cell(f.local_time(s["start"], tz))],
        [_cell("Steps"), _cell(f"{s['steps']:,} of {s['step_s'] / 60:g} min", "steps")],
    ]
    energy = [
        ("Demand (load)", "load_kwh"),
        ("Served load", "served_kwh"),
        ("Unserved load", "unserved_kwh"),
        ("Generation (after curtailment)", "generation_kwh"),
        ("Curtailed renewable energy", "curtailed_kwh"),
        ("Import from the utility", "import_kwh"),
        ("Export to the utility", "export_kwh"),
        ("Storage charge", "storage_charge_kwh"),
        ("Storage discharge", "storage_discharge_kwh"),
        ("Network losses", "losses_kwh"),
        ("Spilled (no sink)", "spilled_kwh"),
        ("Heat demand", "heat/demand_kwh"),
        ("Heat from the CHP", "heat/chp_kwh"),
        ("Heat from the boiler", "heat/boiler_kwh"),
        ("Heat dumped", "heat/dumped_kwh"),
        ("Heat unserved", "heat/unserved_kwh"),
    ]
    rows += [[_cell(label), _num(s, key, f.kwh)] for label, key in energy]
    rows += [
        [_cell("Self-sufficiency (1 - import / served)"), _num(s, "self_sufficiency", f.percent)],
        [_cell("Peak import"), _num(s, "peak_import_kw", f.kw)],
        [_cell("Peak export"), _num(s, "peak_export_kw", f.kw)],
        [_cell("Hours islanded"), _num(s, "islanded_hours", f.hours)],
        [_cell("Hours in blackout"), _num(s, "blackout_hours", f.hours)],
        [
            _cell("CO2 (import, CHP, fuel cell, boiler)"),
            _num(s, "co2_kg", lambda x: f.with_unit(x, "kg")),
        ],
    ]
    freq = s["island_frequency_hz"]
    if freq["min"] is not None:
        rows.append(
            [
                _cell("Island frequency, lowest / highest"),
                _cell(f"{freq['min']:.3f} / {freq['max']:.3f} Hz"),
            ]
        )
    if v.get("runs"):
        for end in ("min", "max"):
            label = "Lowest" if end == "min" else "Highest"
            where = f"{v[end + '_bus']}, {f.local_time(v[end + '_at'], tz)}"
            rows.append(
                [_cell(f"{label} bus voltage"), _num(s, f"voltage/{end}_pu", f.pu), _cell(where)]
            )
    pf = s["power_flow"]
    if pf["line_loading_max_pct"] is not None:
        rows.append(
            [
                _cell("Highest line loading"),
                _cell(f"{pf['line_loading_max_pct']:.1f} %", "power_flow/line_loading_max_pct"),
            ]
        )
    rows.append(
        [_cell("Energy balance error, worst step"), _cell(f"{s['balance_error_kwh']:.1e} kWh")]
    )
    return table("summary", "Summary of the run", ["quantity", "value", "where and when"], rows)


def monthly_table(s: dict[str, Any], site: Site) -> str:
    """Energy per device and local month; consumption shown positive, batteries net."""
    months = list(s["monthly_energy_kwh"])
    kinds = {d.id: d.kind for d in site.devices}
    rows = []
    for d in s["energy_kwh"]:
        sign = -1 if kinds[d] in ("load", "ev_charger", "shiftable_load") else 1
        what = {1: "produced", -1: "consumed"}[sign] if kinds[d] != "battery" else "net discharge"
        rows.append(
            [_cell(f.device_name(site, d)), _cell(what)]
            + [_num(s, f"monthly_energy_kwh/{m}/{d}", f.number, sign) for m in months]
            + [_num(s, f"energy_kwh/{d}", f.number, sign)]
        )
    for col, label in (
        ("import_kwh", "Import from the utility"),
        ("export_kwh", "Export to the utility"),
    ):
        rows.append(
            [_cell(label), _cell("exchanged")]
            + [_num(s, f"monthly_grid_kwh/{m}/{col}", f.number) for m in months]
            + [_num(s, col, f.number)]
        )
    head = ["device", "", *months, "total"]
    caption = f"Energy per device and month, kWh (local months, {s['timezone']})"
    return table("monthly-energy", caption, head, rows)


def generators_table(s: dict[str, Any], site: Site) -> str:
    rows = []
    for d, g in s["generators"].items():
        k = f"generators/{d}/"
        pv = "dc_kwp" in g
        rows.append(
            [
                _cell(f.device_name(site, d)),
                _num(s, k + "rating_kw", f.kw),
                _num(s, k + "dc_kwp", lambda x: f.with_unit(x, "kWp")) if pv else _cell("–"),
                _num(s, k + "energy_kwh", f.kwh),
                _num(s, k + "specific_yield_kwh_per_kwp", lambda x: f.with_unit(x, "kWh/kWp"))
                if pv
                else _cell("–"),
                _num(s, k + "capacity_factor", f.percent),
                _num(s, k + "full_load_hours", f.hours),
            ]
        )
    head = [
        "unit",
        "rating (AC)",
        "DC rating",
        "energy",
        "specific yield",
        "capacity factor",
        "full-load hours",
    ]
    return table(
        "generators", "Generators: yield and capacity factor (on the AC rating)", head, rows
    )


def chp_table(s: dict[str, Any], site: Site) -> str:
    rows = [
        [
            _cell(f.device_name(site, d)),
            _num(s, f"chp/{d}/running_hours", f.hours),
            _num(s, f"chp/{d}/starts", lambda x: f.number(x, 0)),
            _num(s, f"chp/{d}/energy_kwh", f.kwh),
            _num(s, f"chp/{d}/heat_kwh", f.kwh),
            _num(s, f"chp/{d}/fuel_kwh", f.kwh),
        ]
        for d in s["chp"]
    ]
    head = ["CHP", "running hours", "starts", "electricity", "heat", "fuel"]
    return table("chp", "CHP operation", head, rows)


def heat_store_table(s: dict[str, Any], site: Site) -> str:
    cols = [
        ("capacity_kwh", "capacity", f.kwh),
        ("level_min_kwh", "lowest level", f.kwh),
        ("level_mean_kwh", "mean level", f.kwh),
        ("level_max_kwh", "highest level", f.kwh),
        ("charged_kwh", "charged", f.kwh),
        ("discharged_kwh", "discharged (incl. losses)", f.kwh),
        ("equivalent_full_cycles", "full cycles", lambda x: f.number(x, 1)),
        ("chp_heat_kwh", "heat from CHP", f.kwh),
        ("boiler_kwh", "heat from boiler", f.kwh),
        ("demand_kwh", "heat demand", f.kwh),
        ("dumped_kwh", "dumped", f.kwh),
    ]
    rows = [
        [_cell(f.device_name(site, d))]
        + [_num(s, f"heat_stores/{d}/{c}", fmt) for c, _, fmt in cols]
        for d in s["heat_stores"]
    ]
    return table("heat-stores", "Heat stores", ["store", *(h for _, h, _ in cols)], rows)


def battery_table(s: dict[str, Any], site: Site) -> str:
    cols = [
        ("capacity_kwh", "capacity", f.kwh),
        ("soc_min", "lowest SoC", f.percent),
        ("soc_max", "highest SoC", f.percent),
        ("charge_kwh", "charged", f.kwh),
        ("discharge_kwh", "discharged", f.kwh),
        ("equivalent_full_cycles", "full cycles", lambda x: f.number(x, 1)),
    ]
    rows = [
        [_cell(f.device_name(site, d))] + [_num(s, f"batteries/{d}/{c}", fmt) for c, _, fmt in cols]
        for d in s["batteries"]
    ]
    return table("batteries", "Batteries", ["battery", *(h for _, h, _ in cols)], rows)


def outage_table(s: dict[str, Any], site: Site) -> str:
    tz = s["timezone"]
    rows = []
    for i, o in enumerate(s["outages"]):
        shed = ", ".join(f.device_name(site, d) for d in o["shed_loads"]) or "none"
        rows.append(
            [
                _cell(f.local_time(o["start"], tz)),
                _cell(f.local_time(o["end"], tz)),
                _cell(f.local_time(o["back_on_grid"], tz)),
                _num(s, f"outages/{i}/duration_h", f.hours),
                _num(s, f"outages/{i}/unserved_kwh", f.kwh),
                _cell(shed),
            ]
        )
    head = ["start", "end", "back on the grid", "duration", "unserved energy", "loads shed"]
    return table("outages", "Utility outages and unserved energy", head, rows)


def voltage_table(s: dict[str, Any]) -> str:
    tz, v = s["timezone"], s["voltage"]
    hours = v["interval_min"] / 60
    rows = []
    for i, x in enumerate(v["violations"]):
        verdict = (
            "breaks EN 50160 that week"
            if x["week_breaks_en50160"]
            else "flagged; within the 5 % of a week EN 50160 tolerates"
        )
        rows.append(
            [
                _cell(x["bus"]),
                _cell(f.local_time(x["start"], tz)),
                _cell(f.local_time(x["end"], tz)),
                _cell(f.hours(x["power_flows"] * hours)),
                _num(s, f"voltage/violations/{i}/extreme_pu", f.pu),
                _cell(x["band"]),
                _cell(verdict),
            ]
        )
    head = ["bus", "from", "to", "duration", "lowest / highest", "EN 50160 band", "week"]
    caption = (
        "Voltage violations: every bus outside Un ± 10 % (EN 50160), at the power flows "
        f"every {v['interval_min']} min"
    )
    return table("voltage-violations", caption, head, rows)


def failing_weeks_table(s: dict[str, Any]) -> str:
    tz = s["timezone"]
    rows = [
        [_cell(w["bus"]), _cell(f.local_time(w["week"], tz)), _cell(w["why"])]
        for w in s["voltage"]["failing_weeks"]
    ]
    if not rows:
        return (
            '<p id="failing-weeks">No bus breaks EN 50160 in any week: 95 % of every week '
            "within Un ± 10 % and none outside +10/-15 %.</p>"
        )
    return table(
        "failing-weeks",
        "Weeks that break EN 50160 (95 % within ± 10 %, all within +10/-15 %)",
        ["bus", "week from", "why"],
        rows,
    )


def events_list(s: dict[str, Any]) -> str:
    tz = s["timezone"]
    items = "".join(
        f"<li>{html.escape(f.local_time(e['ts'], tz))}: {html.escape(e['text'])}</li>"
        for e in s["events"]
    )
    return f'<ul id="events">{items or "<li>none</li>"}</ul>'
