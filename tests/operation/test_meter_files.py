"""Interval readings in files: Green Button (ESPI) XML, CSV, Parquet; import and export from the
command line; bad files refused whole."""

import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd
import pytest

from openmeg.operation.mdms.files import read_readings, write_readings
from openmeg.operation.mdms.store import IngestError
from openmeg.protocols.greenbutton import GreenButtonError, read_green_button, write_green_button

T0 = datetime(2026, 10, 1, tzinfo=UTC)

SAMPLE = b"""<?xml version="1.0" encoding="UTF-8"?>
<feed xmlns="http://www.w3.org/2005/Atom" xmlns:espi="http://naesb.org/espi">
  <entry><title>m-h03</title><content><espi:UsagePoint><espi:ServiceCategory><espi:kind>0</espi:kind></espi:ServiceCategory></espi:UsagePoint></content></entry>
  <entry><content><espi:ReadingType><espi:flowDirection>19</espi:flowDirection><espi:intervalLength>900</espi:intervalLength><espi:powerOfTenMultiplier>-1</espi:powerOfTenMultiplier><espi:uom>72</espi:uom></espi:ReadingType></content></entry>
  <entry><content><espi:IntervalBlock>
    <espi:IntervalReading><espi:timePeriod><espi:duration>900</espi:duration><espi:start>1790812800</espi:start></espi:timePeriod><espi:value>4250</espi:value></espi:IntervalReading>
    <espi:IntervalReading><espi:timePeriod><espi:duration>900</espi:duration><espi:start>1790813700</espi:start></espi:timePeriod><espi:value>12</espi:value></espi:IntervalReading>
  </espi:IntervalBlock></content></entry>
</feed>"""


def test_reads_a_hand_written_espi_feed() -> None:
    frame = read_green_button(SAMPLE)
    assert frame.meter.tolist() == ["m-h03", "m-h03"]
    assert frame.channel.tolist() == ["export", "export"]  # flow direction 19: received
    assert frame.interval_start.tolist() == [T0, T0 + timedelta(minutes=15)]
    assert frame.value_kwh.tolist() == pytest.approx([0.425, 0.0012])  # 4250 x 10^-1 Wh


def test_green_button_round_trip() -> None:
    frame = pd.DataFrame(
        {
            "meter": ["m-h01"] * 3 + ["m-o1"] * 2,
            "channel": ["import", "import", "export", "import", "import"],
            "interval_start": [T0, T0 + timedelta(minutes=15), T0, T0, T0 + timedelta(minutes=15)],
            "value_kwh": [0.25, 0.333, 1.5, 0.0, 2.125],
        }
    )
    back = read_green_button(write_green_button(frame))
    key = ["meter", "channel", "interval_start"]
    pd.testing.assert_frame_equal(
        back.sort_values(key, ignore_index=True), frame.sort_values(key, ignore_index=True)
    )


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"<feed", "not well-formed XML"),
        (b"<html/>", "not an Atom feed"),
        (
            b'<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;">]>'
            b'<feed xmlns="http://www.w3.org/2005/Atom">&lol2;</feed>',
            "not well-formed XML",
        ),
        (SAMPLE.replace(b"<espi:uom>72", b"<espi:uom>38"), r"unit 38; accepted 72 \(Wh\)"),
        (SAMPLE.replace(b"<espi:value>12", b"<espi:value>twelve"), "interval value 'twelve'"),
    ],
)
def test_bad_green_button_files_are_refused(data: bytes, message: str) -> None:
    with pytest.raises(GreenButtonError, match=message):
        read_green_button(data)


def _openmeg(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "openmeg", *args], capture_output=True, text=True, timeout=120
    )


def test_import_and_export_from_the_command_line(tmp_path: Path) -> None:
    db = f"sqlite+pysqlite:///{tmp_path / 'meg.db'}"
    good = pd.DataFrame(
        {
            "meter": "m-h01",
            "channel": "import",
            "interval_start": [T0 + timedelta(minutes=15 * i) for i in range(4)],
            "value_kwh": [0.1, 0.2, 0.3, 0.4],
        }
    )
    write_readings(good, tmp_path / "good.csv")
    run = _openmeg("meters", "import", str(tmp_path / "good.csv"), "--store", db)
    assert run.returncode == 0, run.stderr
    assert "good.csv: 4 new, 0 already stored, 0 conflicting" in run.stdout
    bad = good.assign(meter=["m-h01", "m-h01", "m-nowhere", "m-h01"])
    write_readings(bad, tmp_path / "bad.parquet")
    run = _openmeg("meters", "import", str(tmp_path / "bad.parquet"), "--store", db)
    assert run.returncode == 2 and "bad.parquet row 3: unknown meter 'm-nowhere'" in run.stderr
    run = _openmeg(
        "meters",
        "export",
        str(tmp_path / "out.xml"),
        "--meter",
        "m-h01",
        "--start",
        "2026-10-01",
        "--end",
        "2026-10-02",
        "--store",
        db,
    )
    assert run.returncode == 0, run.stderr
    back = read_readings(tmp_path / "out.xml")
    assert back.value_kwh.tolist() == pytest.approx([0.1, 0.2, 0.3, 0.4])
    with pytest.raises(IngestError, match="unknown format"):
        read_readings(tmp_path / "x.txt")
