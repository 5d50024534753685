"""The issued bill as a document a customer reads: HTML and PDF, every charge on its own line;
a revision shows its number, what it replaces and its credit or debit note."""

from __future__ import annotations

import html
from decimal import Decimal

import pandas as pd
from fpdf import FPDF

from openmeg.provider.billing import Bill, BillLine
from openmeg.provider.issued_bills import IssuedBill


def _money(x: Decimal, currency: str) -> str:
    sign = "-" if x < 0 else ""
    return f"{sign}{currency} {abs(x):,.2f}"


def _period(bill: Bill) -> str:
    last = bill.end - pd.Timedelta(days=1)
    return f"{bill.start:%Y-%m-%d} to {last:%Y-%m-%d}"


def _header(issued: IssuedBill) -> list[str]:
    b = issued.bill
    head = [
        f"Bill number: {issued.number}, revision {issued.revision}",
        f"Issued: {issued.issued_at:%Y-%m-%d %H:%M} UTC",
        f"Meter: {b.meter}",
        f"Period: {_period(b)}",
        f"Tariff: {b.tariff} (version {issued.tariff_version[:12]})",
    ]
    if issued.revision > 1:
        head.append(f"Replaces revision {issued.revision - 1} of this bill")
    return head


def _note_title(issued: IssuedBill, currency: str) -> str:
    assert issued.difference is not None
    owed = "you owe" if issued.difference > 0 else "you are credited"
    return (
        f"{issued.kind.capitalize()} to revision {issued.revision - 1}: "
        f"{owed} {_money(abs(issued.difference), currency)}"
    )


def _rows(lines: tuple[BillLine, ...], currency: str) -> str:
    return "".join(
        f"<tr><td>{html.escape(ln.description)}</td><td class=n>{ln.quantity:,.3f} {ln.unit}</td>"
        f"<td class=n>{ln.rate:,.5f}</td><td class=n>{_money(ln.amount, currency)}</td></tr>"
        for ln in lines
    )


def bill_html(
    issued: IssuedBill, *, site_name: str, customer_name: str, currency: str = "USD"
) -> str:
    b = issued.bill
    head = "<br>".join(html.escape(x) for x in _header(issued))
    note = ""
    if issued.difference is not None:
        note = (
            f"<h3>{html.escape(_note_title(issued, currency))}</h3>"
            "<table><thead><tr><th>change</th><th class=n>quantity</th><th class=n>rate</th>"
            f"<th class=n>amount</th></tr></thead><tbody>{_rows(issued.note, currency)}</tbody>"
            f"<tfoot><tr><td colspan=3>Difference</td>"
            f"<td class=n>{_money(issued.difference, currency)}</td></tr></tfoot></table>"
        )
    return (
        "<!doctype html><html><head><meta charset='utf-8'>"
        f"<title>Bill {html.escape(issued.number)} {html.escape(b.customer)}</title>"
        "<style>body{font-family:sans-serif;max-width:800px;margin:2em auto}"
        "table{border-collapse:collapse;width:100%}"
        "td,th{padding:4px 8px;border-bottom:1px solid #ccc}"
        ".n{text-align:right}tfoot td{font-weight:bold}</style></head><body>"
        f"<h1>{html.escape(site_name)}</h1><h2>Electricity bill</h2>"
        f"<p>Customer: {html.escape(customer_name)} ({html.escape(b.customer)})<br>{head}</p>"
        "<table><thead><tr><th>charge</th><th class=n>quantity</th><th class=n>rate</th>"
        f"<th class=n>amount</th></tr></thead><tbody>{_rows(b.lines, currency)}</tbody>"
        f"<tfoot><tr><td colspan=3>Total</td><td class=n>{_money(b.total, currency)}</td></tr>"
        f"</tfoot></table>{note}<p><small>Content hash {issued.content_hash}</small></p>"
        "</body></html>\n"
    )


def _pdf_table(pdf: FPDF, lines: tuple[BillLine, ...], currency: str, head: str) -> None:
    widths = (80, 40, 30, 40)
    pdf.set_font("Helvetica", "B", 10)
    for w, title in zip(widths, (head, "quantity", "rate", "amount"), strict=True):
        pdf.cell(w, 7, title, border="B", align="L" if title == head else "R")
    pdf.ln()
    pdf.set_font("Helvetica", "", 10)
    for ln in lines:
        cells = (
            ln.description,
            f"{ln.quantity:,.3f} {ln.unit}",
            f"{ln.rate:,.5f}",
            _money(ln.amount, currency),
        )
        for w, text, align in zip(widths, cells, "LRRR", strict=True):
            pdf.cell(w, 6, text, align=align)
        pdf.ln()


def bill_pdf(
    issued: IssuedBill, *, site_name: str, customer_name: str, currency: str = "USD"
) -> bytes:
    b = issued.bill
    pdf = FPDF(format="A4")
    pdf.add_page()
    pdf.set_font("Helvetica", "B", 16)
    pdf.cell(0, 10, site_name, new_x="LMARGIN", new_y="NEXT")
    pdf.set_font("Helvetica", "", 11)
    for text in (f"Electricity bill for {customer_name} ({b.customer})", *_header(issued)):
        pdf.cell(0, 7, text, new_x="LMARGIN", new_y="NEXT")
    pdf.ln(4)
    _pdf_table(pdf, b.lines, currency, "charge")
    pdf.set_font("Helvetica", "B", 11)
    pdf.cell(150, 8, "Total", border="T")
    pdf.cell(40, 8, _money(b.total, currency), border="T", align="R")
    pdf.ln(12)
    if issued.difference is not None:
        pdf.cell(0, 8, _note_title(issued, currency), new_x="LMARGIN", new_y="NEXT")
        _pdf_table(pdf, issued.note, currency, "change")
        pdf.set_font("Helvetica", "B", 11)
        pdf.cell(150, 8, "Difference", border="T")
        pdf.cell(40, 8, _money(issued.difference, currency), border="T", align="R")
        pdf.ln(12)
    pdf.set_font("Helvetica", "", 8)
    pdf.cell(0, 6, f"Content hash {issued.content_hash}", new_x="LMARGIN", new_y="NEXT")
    return bytes(pdf.output())
