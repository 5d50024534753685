"""Versioned bus messages (JSON on the wire), and the topics that carry them."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, model_validator

from openmeg.core.addresses import UNIT_MAX, check_host
from openmeg.core.points import Point, PointId, Quality

SCHEMA_VERSION = 1

ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.\-]*$"
"""Site, device, meter, customer and point ids: letters, digits, ``_ . -``."""
Id = Annotated[str, Field(pattern=ID_PATTERN, min_length=1, max_length=64)]
"""An identifier on the bus (at most 64 characters)."""
_ID = re.compile(ID_PATTERN)


def is_id(text: str) -> bool:
    """Whether ``text`` is an identifier a message may carry."""
    return len(text) <= 64 and _ID.fullmatch(text) is not None


Text = Annotated[str, Field(max_length=500)]
"""Free text for people (alarm text, a refusal's reason): at most 500 characters."""
Label = Annotated[str, Field(max_length=64)]
"""A short label (a unit, a tariff's id, a period's name)."""
VALUE_MAX = 1e12
"""The largest magnitude of a number on the bus: beyond it a value is garbage, not a reading."""
Value = Annotated[float, Field(ge=-VALUE_MAX, le=VALUE_MAX)]
"""A finite number of magnitude at most ``VALUE_MAX``."""


def reportable(value: float) -> float:
    """``value`` if a message may carry it (finite, at most ``VALUE_MAX``), else 0."""
    return value if abs(value) <= VALUE_MAX else 0.0  # NaN compares False: 0


Energy = Annotated[float, Field(ge=0, le=VALUE_MAX)]
"""An energy or a power that cannot be negative (kWh, kW)."""
PRICE_MAX = 1000.0
"""The largest magnitude of a price per kWh any message may carry; sites set a tighter one."""
Price = Annotated[float, Field(ge=-PRICE_MAX, le=PRICE_MAX)]
Money = Annotated[float, Field(ge=-1e9, le=1e9)]
"""An amount of money of one account (currency)."""


class _Message(BaseModel):
    model_config = ConfigDict(
        frozen=True, extra="forbid", allow_inf_nan=False, revalidate_instances="always"
    )
    v: Literal[1] = 1


class PointUpdate(_Message):
    """A new value of a point."""

    type: Literal["point"] = "point"
    site: Id
    device: Id
    name: Id
    value: Value | None
    """``None`` (JSON null) where the device gave no value: the quality is not good then."""
    unit: Label
    ts: datetime
    quality: Quality = Quality.GOOD

    @model_validator(mode="after")
    def _valued_if_good(self) -> PointUpdate:
        if self.value is None and self.quality is Quality.GOOD:
            raise ValueError("a point of quality good needs a value: send a number")
        return self

    @classmethod
    def of(cls, point: Point) -> PointUpdate:
        return cls(
            site=point.id.site,
            device=point.id.device,
            name=point.id.name,
            value=point.value if point.value == point.value else None,
            unit=point.unit,
            ts=point.ts,
            quality=point.quality,
        )

    def to_point(self) -> Point:
        return Point(
            id=PointId(site=self.site, device=self.device, name=self.name),
            value=float("nan") if self.value is None else self.value,
            unit=self.unit,
            ts=self.ts,
            quality=self.quality,
        )


class AlarmMessage(_Message):
    """An alarm raised or cleared by any part of the platform."""

    type: Literal["alarm"] = "alarm"
    site: Id
    source: Id
    code: Id
    text: Text
    active: bool
    ts: datetime
    severity: Literal["info", "warning", "critical"] = "warning"


class ModeChange(_Message):
    """The MEG changed operating mode (grid-connected or island)."""

    type: Literal["mode"] = "mode"
    site: Id
    mode: Literal["grid", "island", "blackout"]
    ts: datetime


class CommandMessage(_Message):
    """A request to write a point, with the operator's signed authorisation (a token bound to
    this device, point and value; ``openmeg.core.command_auth``). A NaN or infinite value
    travels as such (JSON ``NaN``, ``Infinity``) so that the runtime refuses and audits it."""

    model_config = ConfigDict(
        frozen=True, extra="forbid", allow_inf_nan=True, ser_json_inf_nan="constants"
    )
    type: Literal["command"] = "command"
    site: str
    device: str
    name: str
    value: float
    ts: datetime
    authorisation: str = Field("", max_length=4096)


class CommandResult(_Message):
    """The outcome of a command: accepted, or rejected with the reason."""

    type: Literal["command_result"] = "command_result"
    site: Id
    device: Id
    name: Id
    value: Value  # the value asked for (one that no number on the bus may be is reported as 0)
    accepted: bool
    reason: Text = ""
    ts: datetime


class DeviceAdd(_Message):
    """Ask a running MEG to connect a device by its address only (``host:port:unit``)."""

    type: Literal["device_add"] = "device_add"
    site: str
    address: str
    ts: datetime
    authorisation: str = Field("", max_length=4096)
    """The operator's signed authorisation, bound to ``address``."""


class DeviceAdded(_Message):
    """What came of a ``DeviceAdd``: the device found and its points, or why not."""

    type: Literal["device_added"] = "device_added"
    site: Id
    address: Label
    ok: bool
    device: Annotated[str, Field(pattern=r"^$|" + ID_PATTERN, max_length=64)] = ""
    models: Annotated[list[Annotated[int, Field(ge=0, le=65535)]], Field(max_length=256)] = []
    points: Annotated[list[Id], Field(max_length=4096)] = []
    reason: Text = ""
    ts: datetime


READINGS_MAX = 5000
"""The most readings one readings message may carry (a month of quarter hours of one meter
channel, or the head-end's columnar batch of many: ``MAX_READINGS`` of the metering)."""


class IntervalReading(BaseModel):
    """One interval of one meter channel, as a head-end sends it."""

    model_config = ConfigDict(
        frozen=True, extra="forbid", allow_inf_nan=False, revalidate_instances="always"
    )
    interval_start: datetime
    value_kwh: Energy


class MeterReadings(_Message):
    """A batch of interval readings of one meter channel (AMI head-end -> MDMS)."""

    type: Literal["readings"] = "readings"
    site: Id
    meter: Id
    channel: Literal["import", "export"]
    readings: Annotated[list[IntervalReading], Field(max_length=READINGS_MAX)]


class ReadingsBatch(_Message):
    """Interval readings of many meter channels in columns, one reading per row (AMI head-end
    -> MDMS): what a head-end sends at a boundary for all its meters, in one message."""

    type: Literal["readings_batch"] = "readings_batch"
    site: Id
    meter: Annotated[list[Id], Field(max_length=READINGS_MAX)]
    channel: Annotated[list[Literal["import", "export"]], Field(max_length=READINGS_MAX)]
    interval_start: Annotated[list[datetime], Field(max_length=READINGS_MAX)]
    value_kwh: Annotated[list[Energy], Field(max_length=READINGS_MAX)]

    @model_validator(mode="after")
    def _same_lengths(self) -> ReadingsBatch:
        n = len(self.meter)
        if not len(self.channel) == len(self.interval_start) == len(self.value_kwh) == n:
            raise ValueError("meter, channel, interval_start and value_kwh differ in length")
        return self

    @classmethod
    def of(cls, site: str, batches: list[MeterReadings]) -> ReadingsBatch:
        """The readings of ``batches`` in one columnar message."""
        rows = [(b.meter, b.channel, r) for b in batches for r in b.readings]
        return cls(
            site=site,
            meter=[m for m, _, _ in rows],
            channel=[c for _, c, _ in rows],
            interval_start=[r.interval_start for _, _, r in rows],
            value_kwh=[r.value_kwh for _, _, r in rows],
        )

    def split(self) -> list[MeterReadings]:
        """The readings by meter channel, in the order they came."""
        out: dict[tuple[str, str], list[IntervalReading]] = {}
        for m, c, t, v in zip(
            self.meter, self.channel, self.interval_start, self.value_kwh, strict=True
        ):
            out.setdefault((m, c), []).append(IntervalReading(interval_start=t, value_kwh=v))
        return [
            MeterReadings(site=self.site, meter=m, channel=c, readings=rs)
            for (m, c), rs in out.items()
        ]


def split_readings(msg: object) -> list[MeterReadings]:
    """The readings of a readings message of either shape, by meter channel; none otherwise."""
    if isinstance(msg, MeterReadings):
        return [msg]
    if isinstance(msg, ReadingsBatch):
        return msg.split()
    return []


class ReadRequest(_Message):
    """The MDMS asks the head-end to read a meter channel's intervals again, ``start <=
    interval start < end`` (two-way AMI): the answer comes on the readings topic."""

    type: Literal["read_request"] = "read_request"
    site: str
    meter: str
    channel: Literal["import", "export"]
    start: datetime
    end: datetime
    ts: datetime


class PriceSignal(_Message):
    """The price a customer pays (and is paid) from ``ts`` on, sent to their premises (two-way
    AMI, Y.2071 clause 9.1)."""

    type: Literal["price"] = "price"
    site: Id
    customer: Id
    ts: datetime
    buy_per_kwh: Price
    sell_per_kwh: Price
    tariff: Label
    period: Label


class PeakDemand(_Message):
    """An owner's peak demand of the month so far (largest hourly average), announced when it
    rises (Y.2071 Appendix V, step 3)."""

    type: Literal["peak"] = "peak"
    site: Id
    owner: Id
    building: Id
    month: Annotated[str, Field(pattern=r"^[0-9]{4}-(0[1-9]|1[0-2])$")]
    peak_kw: Energy
    hour_start: datetime


CHANGES_MAX = 10000
"""The most price changes one publication may carry (more than a year of hours)."""


class PriceChange(BaseModel):
    """A market price from ``effective_from`` until the next change (currency per kWh)."""

    model_config = ConfigDict(
        frozen=True, extra="forbid", allow_inf_nan=False, revalidate_instances="always"
    )
    effective_from: datetime
    buy: Price
    sell: Price


class MarketPrices(_Message):
    """The market's real-time prices: the price now and the changes scheduled ahead (market
    price server -> price synchronising units, Y.2071 Appendix III)."""

    type: Literal["market_prices"] = "market_prices"
    site: Id
    ts: datetime
    changes: Annotated[list[PriceChange], Field(max_length=CHANGES_MAX)]


class TradingAccounts(_Message):
    """A prosumer's trading accounts so far this month (the accounting server, continuously)."""

    type: Literal["trading_accounts"] = "trading_accounts"
    site: Id
    customer: Id
    ts: datetime
    since: datetime
    purchases: Money
    sales: Money
    incentives: Money
    net: Money


BusMessage = Annotated[
    PointUpdate
    | AlarmMessage
    | ModeChange
    | CommandMessage
    | CommandResult
    | DeviceAdd
    | DeviceAdded
    | MeterReadings
    | ReadingsBatch
    | ReadRequest
    | PriceSignal
    | PeakDemand
    | MarketPrices
    | TradingAccounts,
    Field(discriminator="type"),
]
_ADAPTER: TypeAdapter[BusMessage] = TypeAdapter(BusMessage)


def encode(message: BusMessage) -> bytes:
    """The JSON bytes of ``message``."""
    return message.model_dump_json().encode()


def decode(data: bytes | str) -> BusMessage:
    """Read a message from JSON; raises ``pydantic.ValidationError`` when it is malformed."""
    return _ADAPTER.validate_json(data)


def revalidate(message: BusMessage) -> BusMessage:
    """``message`` checked again against its model (one built without validation, e.g. by
    ``model_construct``, is refused like one from the wire); ``ValidationError`` if bad."""
    return _ADAPTER.validate_python(message)


def point_topic(site: str, device: str, name: str, *, domain: str = "der") -> str:
    """``meg/<site>/<domain>/<device>/<name>``."""
    return f"meg/{site}/{domain}/{device}/{name}"


def alarm_topic(site: str, source: str) -> str:
    return f"meg/{site}/operation/alarms/{source}"


def mode_topic(site: str) -> str:
    return f"meg/{site}/distribution/mode"


def command_topic(site: str, device: str, name: str) -> str:
    """Where commands to ``device/name`` are sent."""
    return f"meg/{site}/command/{device}/{name}"


def command_result_topic(site: str, device: str, name: str) -> str:
    return f"meg/{site}/command-result/{device}/{name}"


def device_add_topic(site: str) -> str:
    return f"meg/{site}/operation/devices/add"


def device_added_topic(site: str) -> str:
    return f"meg/{site}/operation/devices/added"


def parse_device_address(text: str) -> tuple[str, int, int]:
    """``host:port:unit`` -> its parts; ``ValueError`` says what is accepted."""
    parts = text.rsplit(":", 2)
    try:
        host, port, unit = parts[0], int(parts[1]), int(parts[2])
    except (IndexError, ValueError):
        raise ValueError(
            f"device address {text!r} must be HOST:PORT:UNIT, e.g. 127.0.0.1:502:1"
        ) from None
    if not host or not 1 <= port <= 65535 or not 0 <= unit <= UNIT_MAX:
        raise ValueError(f"device address {text!r}: port 1..65535 and unit id 0..{UNIT_MAX}")
    check_host(host)
    return host, port, unit


def readings_topic(site: str, meter: str) -> str:
    """Where a meter's interval readings travel to the MDMS."""
    return f"meg/{site}/customer/{meter}/readings"


def batch_readings_topic(site: str) -> str:
    """Where a head-end sends the readings of all its meters at a boundary (a ``ReadingsBatch``):
    under the readings topics (``readings_topic(site, "+")`` takes both)."""
    return readings_topic(site, "_all")


def read_request_topic(site: str, meter: str) -> str:
    """Where the MDMS asks the head-end to read a meter again (``ReadRequest``): under the
    MDMS's own topics, which only it may publish on."""
    return f"meg/{site}/mdms/{meter}/read-request"


def stored_readings_topic(site: str, meter: str) -> str:
    """Where the MDMS announces a meter's interval readings once it has stored them."""
    return f"meg/{site}/mdms/{meter}/readings"


def cycle_topic(site: str) -> str:
    """Where each control cycle reports its duration, at the cycle's instant: the beat that
    the services which work on the clock (rather than on a message) keep time by."""
    return point_topic(site, "cycle", "duration_ms", domain="operation")


def price_topic(site: str, customer: str) -> str:
    return f"meg/{site}/customer/{customer}/price"


def peak_topic(site: str, owner: str) -> str:
    return f"meg/{site}/customer/{owner}/peak"


def market_prices_topic(site: str) -> str:
    return f"meg/{site}/market/prices"


def trading_accounts_topic(site: str, customer: str) -> str:
    return f"meg/{site}/customer/{customer}/trading"
