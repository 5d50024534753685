"""What the DER data feeder reads from one device in a cycle: its subscribed points (routes), the
coalesced reads that cover the due ones, and where each point's bytes sit in the answers."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from openmeg.core.points import Quality
from openmeg.distribution.coalesce import coalesce
from openmeg.distribution.discovery import PointAddress
from openmeg.distribution.point_decode import Decoder, decoder


@dataclass(kw_only=True, slots=True)
class Item:
    """One entry of the hash table: the value collected last, its digest (the point's registers
    and its scale factor's, as read), and what was delivered."""

    value: float | None = None
    digest: bytes | None = None
    delivered_value: float | None = None
    delivered_digest: bytes | None = None
    delivered_quality: Quality | None = None
    polled_at: datetime | None = None


@dataclass(kw_only=True, slots=True)
class Route:
    """A subscribed point of a device: where it is, how often, with what deadband, and where
    its changes go on the bus."""

    point: PointAddress
    key: str
    topic: str
    unit: str
    interval_s: float
    deadband: float
    decode: Decoder
    item: Item
    polled_s: float | None = None  # when last collected: seconds since the feeder's first poll


def route(
    p: PointAddress, *, key: str, topic: str, unit: str, interval_s: float, deadband: float,
    item: Item,
) -> Route:  # fmt: skip
    return Route(
        point=p,
        key=key,
        topic=topic,
        unit=unit,
        interval_s=interval_s,
        deadband=deadband,
        decode=decoder(p.type, p.size, scaled=p.sf_address is not None, factor=p.factor),
        item=item,
    )


@dataclass(frozen=True, kw_only=True, slots=True)
class Slice:
    """Where one route's registers sit in the answers: read ``read``, bytes ``start:end``; its
    scale factor in read ``sf_read`` (-1: none) at ``sf_start``."""

    route: Route
    read: int
    start: int
    end: int
    sf_read: int
    sf_start: int


@dataclass(kw_only=True, slots=True)
class ReadPlan:
    """The reads (start register, count) of one set of due routes, and their slices."""

    reads: tuple[tuple[int, int], ...]
    slices: tuple[Slice, ...]
    last: list[bytes] = field(default_factory=list)  # the answers of the last cycle


def plan(routes: list[Route], *, max_gap: int) -> ReadPlan:
    """Coalesce the registers of ``routes`` (and their scale factors) into few reads."""
    spans = [(r.point.address, r.point.size) for r in routes]
    spans += [(r.point.sf_address, 1) for r in routes if r.point.sf_address is not None]
    reads = tuple(coalesce(spans, max_gap=max_gap))

    def where(address: int) -> tuple[int, int]:
        for i, (start, count) in enumerate(reads):
            if start <= address < start + count:
                return i, 2 * (address - start)
        raise AssertionError(f"register {address} is in no read")  # coalesce covers every span

    slices = []
    for r in routes:
        read, start = where(r.point.address)
        sf_read, sf_start = where(r.point.sf_address) if r.point.sf_address is not None else (-1, 0)
        slices.append(
            Slice(
                route=r,
                read=read,
                start=start,
                end=start + 2 * r.point.size,
                sf_read=sf_read,
                sf_start=sf_start,
            )
        )
    return ReadPlan(reads=reads, slices=tuple(slices))
