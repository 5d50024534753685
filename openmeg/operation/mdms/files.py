"""Interval readings in files: CSV and Parquet (columns meter, channel, interval_start,
value_kwh) and Green Button (ESPI) XML."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from openmeg.operation.mdms.store import IngestError
from openmeg.protocols.greenbutton import GreenButtonError, read_green_button, write_green_button

FORMATS = (".csv", ".parquet", ".xml")


def read_readings(path: Path) -> pd.DataFrame:
    """The readings in ``path``; ``IngestError`` says why a file cannot be read."""
    suffix = path.suffix.lower()
    try:
        if suffix == ".csv":
            return pd.read_csv(path, dtype={"meter": str, "channel": str})
        if suffix == ".parquet":
            return pd.read_parquet(path)
        if suffix == ".xml":
            return read_green_button(path.read_bytes(), name=path.name)
    except GreenButtonError as err:
        raise IngestError([str(err)]) from err
    except (OSError, ValueError, pd.errors.ParserError) as err:
        raise IngestError([f"{path.name}: cannot be read: {err}"]) from err
    raise IngestError([f"{path.name}: unknown format; accepted: {', '.join(FORMATS)}"])


def write_readings(frame: pd.DataFrame, path: Path) -> None:
    suffix = path.suffix.lower()
    if suffix == ".csv":
        frame.to_csv(path, index=False)
    elif suffix == ".parquet":
        frame.to_parquet(path, index=False)
    elif suffix == ".xml":
        path.write_bytes(write_green_button(frame))
    else:
        raise ValueError(f"{path.name}: unknown format; accepted: {', '.join(FORMATS)}")
