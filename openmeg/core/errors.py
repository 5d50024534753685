"""The errors of openmeg. Each one says what went wrong and what to do about it."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


class OpenMegError(Exception):
    """Base of every error openmeg raises on purpose."""


@dataclass(frozen=True, kw_only=True)
class Problem:
    """One problem found in an input file: where it is and what is accepted."""

    file: str
    field: str
    message: str

    def __str__(self) -> str:
        return f"{self.file}: {self.field}: {self.message}"


class SiteFileError(OpenMegError):
    """A site file could not be loaded; ``problems`` lists every problem found."""

    def __init__(self, problems: Sequence[Problem]) -> None:
        self.problems = tuple(problems)
        super().__init__("\n".join(str(p) for p in self.problems))


class DeviceError(OpenMegError):
    """A device could not be reached or answered with an error."""


class CommandError(OpenMegError):
    """A command was refused: unknown point, read-only point, or value out of range."""


class StoreError(OpenMegError):
    """The store could not be opened, read or written."""


class BusError(OpenMegError):
    """The bus could not deliver or decode a message."""


class ControllerError(OpenMegError):
    """A controller failed during a control cycle."""
