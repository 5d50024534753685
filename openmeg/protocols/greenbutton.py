"""Green Button (NAESB REQ.21 ESPI) interval data: read and write the Atom XML.

A UsagePoint entry's title names the meter; each MeterReading has a ReadingType (flow
direction 1 = delivered to the customer: our ``import`` channel; 19 = received: ``export``;
unit 72 = Wh with a power-of-ten multiplier) and IntervalBlocks of IntervalReadings (start in
seconds since the epoch, duration, value). Parsing is protected against XML bombs
(defusedxml); a file that is not well-formed ESPI is refused with the reason.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from datetime import UTC, datetime

import pandas as pd
from defusedxml import ElementTree as SafeET
from defusedxml.common import DefusedXmlException

from openmeg.core.errors import OpenMegError

ATOM = "http://www.w3.org/2005/Atom"
ESPI = "http://naesb.org/espi"
NS = {"atom": ATOM, "espi": ESPI}
FLOW = {1: "import", 19: "export"}
WH = 72


class GreenButtonError(OpenMegError):
    """A Green Button file could not be read."""


def _int(el: ET.Element | None, what: str) -> int:
    if el is None or el.text is None:
        raise GreenButtonError(f"missing {what}")
    try:
        return int(el.text.strip())
    except ValueError:
        raise GreenButtonError(f"{what} {el.text!r} is not a whole number") from None


def read_green_button(data: bytes, *, name: str = "file") -> pd.DataFrame:
    """Interval readings ``meter, channel, interval_start, value_kwh`` of an ESPI feed."""
    try:
        root = SafeET.fromstring(data)
    except (ET.ParseError, DefusedXmlException) as err:
        raise GreenButtonError(f"{name}: not well-formed XML: {err}") from err
    if root.tag != f"{{{ATOM}}}feed":
        raise GreenButtonError(f"{name}: not an Atom feed (root is {root.tag})")
    entries = root.findall("atom:entry", NS)
    meter = None
    reading_type: tuple[str, int] | None = None
    rows: list[tuple[str, str, datetime, float]] = []
    for entry in entries:
        content = entry.find("atom:content", NS)
        if content is None:
            continue
        if content.find("espi:UsagePoint", NS) is not None:
            title = entry.findtext("atom:title", default="", namespaces=NS).strip()
            if not title:
                raise GreenButtonError(f"{name}: a UsagePoint without a title (the meter id)")
            meter = title
        rt = content.find("espi:ReadingType", NS)
        if rt is not None:
            flow = _int(rt.find("espi:flowDirection", NS), f"{name}: ReadingType flowDirection")
            uom = _int(rt.find("espi:uom", NS), f"{name}: ReadingType uom")
            power = rt.find("espi:powerOfTenMultiplier", NS)
            if flow not in FLOW:
                raise GreenButtonError(
                    f"{name}: flowDirection {flow}; accepted 1 (delivered), 19 (received)"
                )
            if uom != WH:
                raise GreenButtonError(f"{name}: unit {uom}; accepted 72 (Wh)")
            reading_type = (
                FLOW[flow],
                _int(power, "powerOfTenMultiplier") if power is not None else 0,
            )
        for block in content.findall("espi:IntervalBlock", NS):
            if meter is None or reading_type is None:
                raise GreenButtonError(
                    f"{name}: an IntervalBlock before its UsagePoint and ReadingType"
                )
            channel, power10 = reading_type
            for ir in block.findall("espi:IntervalReading", NS):
                period = ir.find("espi:timePeriod", NS)
                if period is None:
                    raise GreenButtonError(f"{name}: an IntervalReading without timePeriod")
                start = _int(period.find("espi:start", NS), f"{name}: interval start")
                duration = _int(period.find("espi:duration", NS), f"{name}: interval duration")
                if duration != 900:
                    raise GreenButtonError(f"{name}: interval of {duration} s; openmeg takes 900 s")
                value = _int(ir.find("espi:value", NS), f"{name}: interval value")
                rows.append(
                    (
                        meter,
                        channel,
                        datetime.fromtimestamp(start, tz=UTC),
                        value * 10.0**power10 / 1000.0,
                    )
                )
    if not rows:
        raise GreenButtonError(f"{name}: no interval readings found")
    return pd.DataFrame(rows, columns=["meter", "channel", "interval_start", "value_kwh"])


def write_green_button(frame: pd.DataFrame, *, title: str = "openmeg interval data") -> bytes:
    """An ESPI Atom feed of ``meter, channel, interval_start, value_kwh`` (values in Wh, x10^-3
    so that 1 mWh is kept)."""
    ET.register_namespace("", ATOM)
    ET.register_namespace("espi", ESPI)
    feed = ET.Element(f"{{{ATOM}}}feed")
    ET.SubElement(feed, f"{{{ATOM}}}title").text = title
    ET.SubElement(feed, f"{{{ATOM}}}updated").text = datetime.now(UTC).isoformat()

    def entry(title_text: str) -> ET.Element:
        e = ET.SubElement(feed, f"{{{ATOM}}}entry")
        ET.SubElement(e, f"{{{ATOM}}}title").text = title_text
        return ET.SubElement(e, f"{{{ATOM}}}content")

    for meter, by_meter in frame.groupby("meter", sort=True):
        up = ET.SubElement(entry(str(meter)), f"{{{ESPI}}}UsagePoint")
        ET.SubElement(up, f"{{{ESPI}}}ServiceCategory").append(_text("kind", "0"))
        for channel, rows in by_meter.groupby("channel", sort=True):
            rt = ET.SubElement(entry(f"{meter} {channel}"), f"{{{ESPI}}}ReadingType")
            flow = 1 if channel == "import" else 19
            for tag, value in (
                ("accumulationBehaviour", "4"),
                ("flowDirection", str(flow)),
                ("intervalLength", "900"),
                ("powerOfTenMultiplier", "-3"),
                ("uom", str(WH)),
            ):
                rt.append(_text(tag, value))
            block = ET.SubElement(entry(f"{meter} {channel} intervals"), f"{{{ESPI}}}IntervalBlock")
            for r in rows.sort_values("interval_start").itertuples():
                ir = ET.SubElement(block, f"{{{ESPI}}}IntervalReading")
                period = ET.SubElement(ir, f"{{{ESPI}}}timePeriod")
                period.append(_text("duration", "900"))
                period.append(_text("start", str(int(pd.Timestamp(r.interval_start).timestamp()))))
                ir.append(_text("value", str(round(float(r.value_kwh) * 1_000_000))))
    data: bytes = ET.tostring(feed, xml_declaration=True, encoding="utf-8")
    return data


def _text(tag: str, text: str) -> ET.Element:
    el = ET.Element(f"{{{ESPI}}}{tag}")
    el.text = text
    return el
