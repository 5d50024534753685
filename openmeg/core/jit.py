"""A typed wrapper of numba's ``njit`` (cached on disk) for step functions and control laws."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar, cast

import numba

F = TypeVar("F", bound=Callable[..., Any])


def njit(fn: F) -> F:
    """Compile ``fn`` in nopython mode, cached on disk; keeps its type for mypy."""
    return cast(F, numba.njit(cache=True, fastmath=False)(fn))
