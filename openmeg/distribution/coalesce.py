"""Contiguous-register coalescing: as few Modbus reads as cover the registers a poll needs."""

from __future__ import annotations

from collections.abc import Iterable

from openmeg.protocols.modbus import MAX_READ


def coalesce(
    spans: Iterable[tuple[int, int]], *, max_gap: int = 8, max_count: int = MAX_READ
) -> list[tuple[int, int]]:
    """Merge ``(address, count)`` spans into reads ``(address, count)``.

    Two spans share a read when the registers between them number at most ``max_gap`` and the
    read stays within ``max_count`` registers; reading a small gap costs less than a request.
    """
    reads: list[tuple[int, int]] = []
    for start, count in sorted(set(spans)):
        end = start + count
        if reads:
            r_start, r_count = reads[-1]
            r_end = r_start + r_count
            if start - r_end <= max_gap and max(end, r_end) - r_start <= max_count:
                reads[-1] = (r_start, max(end, r_end) - r_start)
                continue
        reads.append((start, count))
    return reads
