"""Files readable by their owner only (mode 0600): created so from the start, written
atomically (a temporary file, fsync, rename), and existing ones tightened with a warning."""

from __future__ import annotations

import contextlib
import logging
import os
import stat
import tempfile
from pathlib import Path

PRIVATE = 0o600
log = logging.getLogger("openmeg.files")


def make_private(path: Path) -> None:
    """Create ``path`` empty with mode 0600 if absent; tighten it to 0600 if others may read it."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE)
    except FileExistsError:
        tighten(path)
    else:
        os.close(fd)


def tighten(path: Path) -> None:
    """Take away every permission of group and others on ``path``, saying so."""
    try:
        mode = stat.S_IMODE(path.stat().st_mode)
    except FileNotFoundError:
        return
    if mode & 0o077:
        path.chmod(mode & 0o700)
        log.warning(
            "%s was readable by others (mode %o): it is now readable by its owner only (%o)",
            path,
            mode,
            mode & 0o700,
        )


def write_private(path: Path, data: bytes) -> None:
    """Replace ``path`` with ``data`` atomically, mode 0600 (never a moment with partial data)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:  # mkstemp creates it with mode 0600
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def write_private_text(path: Path, text: str) -> None:
    """:func:`write_private` for text (UTF-8)."""
    write_private(path, text.encode())
