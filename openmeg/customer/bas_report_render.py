"""A BAS report as a document: HTML for the browser or an e-mail body, PDF for an attachment."""

from __future__ import annotations

import html
from pathlib import Path

from fpdf import FPDF

from openmeg.core.errors import OpenMegError
from openmeg.customer.bas_report import BasReport

_KIND = {
    "cop_drift": "COP drift",
    "fan_after_hours": "fan after hours",
    "lights_empty_zone": "lights in an empty zone",
    "simultaneous_heating_cooling": "simultaneous heating and cooling",
}


def report_title(r: BasReport) -> str:
    """The report's title: daily or monthly, the BAS, its premises and the period."""
    when = f"{r.start:%Y-%m-%d}" if r.period == "day" else f"{r.start:%Y-%m}"
    return f"{'Daily' if r.period == 'day' else 'Monthly'} BAS report {r.bas} ({r.premises}) {when}"


def _tables(r: BasReport) -> list[tuple[str, tuple[str, ...], list[tuple[str, ...]]]]:
    """Each section: its title, its column heads and its rows, as text."""
    energy: list[tuple[str, ...]] = [
        (
            e.name,
            e.kind,
            f"{e.electric_kwh:,.2f}",
            f"{e.heating_kwh:,.2f}",
            f"{e.cooling_kwh:,.2f}",
            f"{e.running_h:,.2f}",
        )
        for e in r.energy
    ]
    energy.append(("Total", "", f"{r.electric_kwh:,.2f}", "", "", ""))
    supply: list[tuple[str, ...]] = [
        (s.supply, f"{s.energy_kwh:,.2f}", f"{s.live_h:,.2f}") for s in r.supply
    ]
    supply.append(("in island", "", f"{r.island_h:,.2f}"))
    alarms: list[tuple[str, ...]] = [
        (a.equipment, a.point, f"{a.start:%Y-%m-%d %H:%M}", f"{a.end:%Y-%m-%d %H:%M}")
        for a in r.alarms
    ] or [("none", "", "", "")]
    findings: list[tuple[str, ...]] = [
        (f.equipment, _KIND[f.kind], f.summary, f"{f.kwh:,.2f}", f"{f.cost:,.2f}")
        for f in r.findings
    ]
    findings.append(("Total", "", "", f"{r.waste_kwh:,.2f}", f"{r.waste_cost:,.2f}"))
    return [
        (
            "Energy per equipment",
            ("equipment", "kind", "electric kWh", "heating kWh", "cooling kWh", "running h"),
            energy,
        ),
        ("Supply status", ("supply", "energy kWh", "live h"), supply),
        ("Fire and security alarms (UTC)", ("equipment", "input", "from", "to"), alarms),
        (
            "Efficiency findings",
            ("equipment", "finding", "evidence", "kWh", f"cost {r.currency}"),
            findings,
        ),
    ]


def report_html(r: BasReport) -> bytes:
    """The report as an HTML page (UTF-8)."""
    parts = [
        "<!doctype html><html><head><meta charset='utf-8'>",
        f"<title>{html.escape(report_title(r))}</title><style>body{{font-family:sans-serif;"
        "max-width:900px;margin:2em auto}table{border-collapse:collapse;width:100%}"
        "td,th{padding:4px 8px;border-bottom:1px solid #ccc;text-align:left}</style></head><body>",
        f"<h1>{html.escape(report_title(r))}</h1>",
        f"<p>From {r.start:%Y-%m-%d %H:%M %Z} to {r.end:%Y-%m-%d %H:%M %Z}</p>",
    ]
    for title, heads, rows in _tables(r):
        parts.append(f"<h2>{html.escape(title)}</h2><table><thead><tr>")
        parts.extend(f"<th>{html.escape(h)}</th>" for h in heads)
        parts.append("</tr></thead><tbody>")
        for row in rows:
            cells = "".join(f"<td>{html.escape(c)}</td>" for c in row)
            parts.append(f"<tr>{cells}</tr>")
        parts.append("</tbody></table>")
    parts.append("</body></html>\n")
    return "".join(parts).encode("utf-8")


def _latin(text: str) -> str:
    return text.replace("—", "-").encode("latin-1", "replace").decode("latin-1")


def report_pdf(r: BasReport) -> bytes:
    """The report as a PDF (A4 landscape)."""
    pdf = FPDF(orientation="L", format="A4")
    pdf.add_page()
    pdf.set_font("Helvetica", "B", 15)
    pdf.cell(0, 10, _latin(report_title(r)), new_x="LMARGIN", new_y="NEXT")
    pdf.set_font("Helvetica", "", 10)
    span = f"From {r.start:%Y-%m-%d %H:%M %Z} to {r.end:%Y-%m-%d %H:%M %Z}"
    pdf.cell(0, 7, _latin(span), new_x="LMARGIN", new_y="NEXT")
    for title, heads, rows in _tables(r):
        pdf.ln(3)
        pdf.set_font("Helvetica", "B", 12)
        pdf.cell(0, 8, _latin(title), new_x="LMARGIN", new_y="NEXT")
        with pdf.table(text_align="LEFT", first_row_as_headings=True) as table:
            pdf.set_font("Helvetica", "", 8)
            for row in (heads, *rows):
                line = table.row()
                for cell in row:
                    line.cell(_latin(cell))
    return bytes(pdf.output())


def write_report(r: BasReport, path: Path) -> bytes:
    """Write the report to ``path`` (``.html`` or ``.pdf``) and return its bytes."""
    suffix = path.suffix.lower()
    if suffix not in (".html", ".pdf"):
        raise OpenMegError(f"write a BAS report to a .html or .pdf file, not {path.name!r}")
    data = report_html(r) if suffix == ".html" else report_pdf(r)
    path.write_bytes(data)
    return data
