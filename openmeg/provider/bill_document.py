"""The bill as a document a customer reads: HTML and PDF, every charge on its own line."""

from __future__ import annotations

import html
from decimal import Decimal

import pandas as pd
from fpdf import FPDF

from openmeg.provider.billing import Bill


def _money(x: Decimal, currency: str) -> str:
    sign = "-" if x < 0 else ""
    return f"{sign}{currency} {abs(x):,.2f}"


def _period(bill: Bill) -> str:
    last = bill.end - pd.Timedelta(days=1)
    return f"{bill.start:%Y-%m-%d} to {last:%Y-%m-%d}"


def bill_html(bill: Bill, *, site_name: str, customer_name: str, currency: str = "USD") -> str:
    rows = "".join(
        f"<tr><td>{html.escape(ln.description)}</td><td class=n>{ln.quantity:,.3f} {ln.unit}</td>"
        f"<td class=n>{ln.rate:,.5f}</td><td class=n>{_money(ln.amount, currency)}</td></tr>"
        for ln in bill.lines
    )
    return (
        "<!doctype html><html><head><meta charset='utf-8'>"
        f"<title>Bill {html.escape(bill.customer)} {bill.start:%Y-%m}</title>"
        "<style>body{font-family:sans-serif;max-width:800px;margin:2em auto}"
        "table{border-collapse:collapse;width:100%}"
        "td,th{padding:4px 8px;border-bottom:1px solid #ccc}"
        ".n{text-align:right}tfoot td{font-weight:bold}</style></head><body>"
        f"<h1>{html.escape(site_name)}</h1><h2>Electricity bill</h2>"
        f"<p>Customer: {html.escape(customer_name)} ({html.escape(bill.customer)})<br>"
        f"Meter: {html.escape(bill.meter)}<br>Period: {_period(bill)}<br>"
        f"Tariff: {html.escape(bill.tariff)}</p>"
        "<table><thead><tr><th>charge</th><th class=n>quantity</th><th class=n>rate</th>"
        f"<th class=n>amount</th></tr></thead><tbody>{rows}</tbody>"
        f"<tfoot><tr><td colspan=3>Total</td><td class=n>{_money(bill.total, currency)}</td></tr>"
        "</tfoot></table></body></html>\n"
    )


def bill_pdf(bill: Bill, *, site_name: str, customer_name: str, currency: str = "USD") -> bytes:
    pdf = FPDF(format="A4")
    pdf.add_page()
    pdf.set_font("Helvetica", "B", 16)
    pdf.cell(0, 10, site_name, new_x="LMARGIN", new_y="NEXT")
    pdf.set_font("Helvetica", "", 11)
    for text in (
        f"Electricity bill for {customer_name} ({bill.customer})",
        f"Meter: {bill.meter}",
        f"Period: {_period(bill)}",
        f"Tariff: {bill.tariff}",
    ):
        pdf.cell(0, 7, text, new_x="LMARGIN", new_y="NEXT")
    pdf.ln(4)
    widths = (80, 40, 30, 40)
    pdf.set_font("Helvetica", "B", 10)
    for w, head in zip(widths, ("charge", "quantity", "rate", "amount"), strict=True):
        pdf.cell(w, 7, head, border="B", align="L" if head == "charge" else "R")
    pdf.ln()
    pdf.set_font("Helvetica", "", 10)
    for ln in bill.lines:
        cells = (
            ln.description,
            f"{ln.quantity:,.3f} {ln.unit}",
            f"{ln.rate:,.5f}",
            _money(ln.amount, currency),
        )
        for w, text, align in zip(widths, cells, "LRRR", strict=True):
            pdf.cell(w, 6, text, align=align)
        pdf.ln()
    pdf.set_font("Helvetica", "B", 11)
    pdf.cell(sum(widths[:3]), 8, "Total", border="T")
    pdf.cell(widths[3], 8, _money(bill.total, currency), border="T", align="R")
    return bytes(pdf.output())
