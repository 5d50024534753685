"""What the API answers with (response models, so that the OpenAPI document says it)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field


class _Out(BaseModel):
    model_config = ConfigDict(extra="forbid", from_attributes=True)


class Problem(BaseModel):
    """Why a request was refused: a sentence, or FastAPI's list of invalid fields."""

    detail: str | list[dict[str, Any]]


class TokenOut(_Out):
    access_token: str
    token_type: str = "bearer"
    expires_in: int = Field(description="seconds the access token is good for")
    refresh_token: str | None = Field(
        None,
        description="(users) exchange it for new tokens before the access token expires "
        "(grant_type=refresh_token); each is good once",
    )
    refresh_expires_in: int | None = Field(
        None, description="seconds the refresh token is good for if not used"
    )


class OAuthProblem(Problem):
    """A grant refused (RFC 6749 §5.2): ``error`` is the OAuth2 code, ``detail`` says why."""

    error: str
    error_description: str


class LogoutOut(_Out):
    ended: bool = Field(description="whether a session of that refresh token was ended")


class Me(_Out):
    name: str
    role: str
    customer: str | None


class SiteOut(_Out):
    id: str
    name: str
    timezone: str
    currency: str
    frequency_hz: int
    field: Literal["simulated", "site"]
    """``simulated``: the field is openmeg's simulated MEG (its simulator controls may be shown)."""
    devices: int
    meters: int
    customers: list[str]


class DeviceOut(_Out):
    id: str
    kind: str
    bus: str
    owner: str | None
    domain: str
    values: dict[str, float]
    origin: str = "site"
    """``site``: named in the site file; ``added``: added at run time by its address."""
    address: str | None = None
    models: list[int] = []
    monitored_only: str | None = None
    """Why openmeg can only monitor this device (``null``: it operates it)."""


class LiveOut(_Out):
    ts: datetime | None
    mode: str
    frequency_hz: float
    import_kw: float
    cycles: int
    cycle_ms: float
    devices: dict[str, dict[str, float]]
    alarms: list[str]


class PointValue(_Out):
    ts: datetime
    value: float | None
    quality: str


class CommandIn(_Out):
    device: str = Field(min_length=1, max_length=64)
    name: str = Field(min_length=1, max_length=64)
    value: float = Field(description="a finite number; NaN or infinite values are refused, audited")
    reason: str = Field("", max_length=200, description="why: logged with the command")


class CommandOut(_Out):
    device: str
    name: str
    value: float
    accepted: bool
    reason: str
    ts: datetime


class AlarmOut(_Out):
    key: str
    source: str
    code: str
    text: str
    severity: str
    raised_at: datetime
    active: bool
    acknowledged: bool
    acknowledged_by: str


class EventOut(_Out):
    id: int
    ts: datetime
    kind: str
    source: str
    code: str
    text: str
    severity: str


class MeterOut(_Out):
    id: str
    customer: str
    parent: str | None
    devices: list[str]


class ReadingOut(_Out):
    interval_start: datetime
    value_kwh: float


class EditIn(_Out):
    channel: str = Field(pattern="^(import|export)$")
    interval_start: datetime
    value_kwh: float = Field(ge=0, allow_inf_nan=False)
    reason: str = Field(min_length=3, max_length=500)


class PriceOut(_Out):
    effective_from: datetime
    buy: float
    sell: float


class WindowIn(_Out):
    purchase: float = Field(ge=0, allow_inf_nan=False)
    sale: float = Field(ge=0, allow_inf_nan=False)
    from_hour: int = Field(0, ge=0, le=23)
    to_hour: int = Field(24, ge=1, le=24)


class TradingIn(_Out):
    windows: list[WindowIn] = Field(min_length=1, max_length=24)
    incentive_per_kwh: float = Field(
        0.0,
        ge=0,
        le=5.0,  # customer.trading.MAX_REFERENCE_PER_KWH: the bound of the reference prices
        allow_inf_nan=False,
        description="incentive per kWh sold [currency/kWh], 0 .. 5 like the reference prices",
    )


class TradingOut(_Out):
    customer: str
    windows: list[WindowIn]
    incentive_per_kwh: float


class AccountsOut(_Out):
    customer: str
    start: datetime
    end: datetime
    purchases: float
    sales: float
    incentives: float
    net: float
    import_kwh: float
    export_kwh: float
    missing_intervals: int


class RevenueOut(_Out):
    device: str
    out_kwh: float
    in_kwh: float
    revenue: float
    periods: dict[str, float]


class SettlementOut(_Out):
    interval_start: datetime
    customer: str
    clearing_price: float | None
    local_kwh: float
    utility_kwh: float
    money: float


class DaySettlementOut(_Out):
    """A prosumer's local day settled on the validated series (its newest revision)."""

    day: str
    customer: str
    revision: int
    position_kwh: float
    local_kwh: float
    utility_kwh: float
    money: float
    difference: float


class AuditOut(_Out):
    seq: int
    ts: datetime
    actor: str
    action: str
    target: str
    detail: dict[str, Any]
    hash: str


class AuditCheck(_Out):
    intact: bool
    problems: list[str]


class UserIn(_Out):
    name: str = Field(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9_-]+$")
    role: str = Field(pattern="^(operator|prosumer|service_provider|auditor)$")
    customer: str | None = Field(None, max_length=64)
    kind: str = Field("user", pattern="^(user|client)$")


class UserOut(_Out):
    name: str
    role: str
    customer: str | None


class UserCreated(UserOut):
    secret: str = Field(description="the password or client secret: shown this once")


class BillLineOut(_Out):
    description: str
    quantity: float
    unit: str
    rate: float
    amount: float


class BillOut(_Out):
    """An issued bill: one revision, as it was issued (never recomputed)."""

    number: str
    revision: int
    revisions: int = Field(description="how many revisions of this bill are issued")
    kind: str = Field(description="bill (revision 1), debit note or credit note")
    issued_at: datetime
    customer: str
    meter: str
    tariff: str
    tariff_version: str = Field(description="SHA-256 of the tariff's canonical JSON")
    start: datetime
    end: datetime
    lines: list[BillLineOut]
    total: float
    note: list[BillLineOut] = Field(description="what changed since the previous revision")
    difference: float | None = Field(description="this total minus the previous revision's")
    content_hash: str


class ShareOut(_Out):
    owner: str
    share: float
    days_present: int
    peak_kw: float
    estimated_intervals: int
    amount: float
