"""A BAS report as an e-mail ready to send: the HTML page as its body, with a plain-text
alternative, and the PDF attached (RFC 5322 / MIME, as an ``.eml`` file or bytes)."""

from __future__ import annotations

import re
from collections.abc import Sequence
from email.message import EmailMessage
from email.policy import SMTP
from pathlib import Path

from openmeg.core.errors import OpenMegError
from openmeg.customer.bas_report import BasReport
from openmeg.customer.bas_report_render import report_html, report_pdf, report_title

_ADDRESS = re.compile(r"^[A-Za-z0-9._%+\-]+@[A-Za-z0-9.\-]+\.[A-Za-z]{2,}$")


def _text(r: BasReport) -> str:
    lines = [
        report_title(r),
        "",
        f"BAS equipment electricity: {r.electric_kwh:,.2f} kWh",
        f"Alarms of fire and security: {len(r.alarms)}",
        f"Efficiency findings: {len(r.findings)}, costing {r.waste_kwh:,.2f} kWh "
        f"and {r.currency} {r.waste_cost:,.2f}",
    ]
    lines += [f"- {f.summary}: {r.currency} {f.cost:,.2f}" for f in r.findings]
    return "\n".join(lines) + "\n\nThe full report is attached as a PDF.\n"


def report_email(r: BasReport, *, sender: str, to: Sequence[str]) -> bytes:
    """The report as an e-mail from ``sender`` to ``to``; ``OpenMegError`` for a malformed
    address (nothing is built)."""
    for address in (sender, *to):
        if not isinstance(address, str) or not _ADDRESS.fullmatch(address):
            raise OpenMegError(f"not an e-mail address: {address!r}; give name@domain.tld")
    if not to:
        raise OpenMegError("give at least one recipient of the BAS report")
    msg = EmailMessage(policy=SMTP)
    msg["Subject"] = report_title(r)
    msg["From"] = sender
    msg["To"] = ", ".join(to)
    msg.set_content(_text(r))
    msg.add_alternative(report_html(r).decode("utf-8"), subtype="html")
    stem = (
        f"bas-{r.bas}-{r.start:%Y-%m-%d}" if r.period == "day" else f"bas-{r.bas}-{r.start:%Y-%m}"
    )
    msg.add_attachment(report_pdf(r), maintype="application", subtype="pdf", filename=f"{stem}.pdf")
    return msg.as_bytes()


def write_email(r: BasReport, path: Path, *, sender: str, to: Sequence[str]) -> bytes:
    """Write the report's e-mail to ``path`` (an ``.eml`` file) and return its bytes."""
    if path.suffix.lower() != ".eml":
        raise OpenMegError(f"write a BAS report's e-mail to an .eml file, not {path.name!r}")
    data = report_email(r, sender=sender, to=to)
    path.write_bytes(data)
    return data
