"""The site file's tariff schema: NREL's Utility Rate Database (URDB) JSON, with pydantic.

Fields used: ``energyratestructure`` (periods of tiers ``{max, unit, rate, adj, sell}``; the
tier ``max`` is in kWh per month, kWh per day of the month (``kWh daily``) or kWh per kW of the
month's peak demand (``kWh/kW``, ``kWh/kW daily``)), ``energyweekdayschedule`` /
``energyweekendschedule`` (12 x 24 period indices), ``demandratestructure`` with its two schedules
(time-of-use demand, $/kW), ``flatdemandstructure`` and ``flatdemandmonths`` (monthly demand),
``fixedchargefirstmeter`` with ``fixedchargeunits`` ($/month, $/day, $/year), ``mincharge`` with
``minchargeunits`` ($/month, $/day, $/year) and ``dgrules`` ("Net Metering", "Net Billing
Instantaneous", "Net Billing Hourly", "Buy All Sell All"; missing means net metering, as in
NREL's reading). URDB does not say when the net metering year ends: ``nm_credit_month`` (the
true-up month, 1-12, December by default) and ``nm_yearend_sell_rate`` (what a kWh left at the
true-up is paid) are SAM's settings under openmeg names, as are ``nb_credit_expire`` and
``nb_apply_credit_current_month`` for net billing with carry-over. openmeg adds ``realtime``:
hourly buy and sell prices that replace the energy rates when present.

Only the schema lives here (the site file validates it); billing is in ``openmeg.provider``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

TierUnit = Literal["kWh", "kWh daily", "kWh/kW", "kWh/kW daily", "kW"]
_UNITS = {u.lower(): u for u in ("kWh", "kWh daily", "kWh/kW", "kWh/kW daily", "kW")}
MoneyUnit = Literal["$/month", "$/day", "$/year"]


class Tier(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")
    max: float | None = Field(None, gt=0, description="upper bound of the tier, kWh or kW")
    unit: TierUnit | None = Field(
        None,
        description=(
            "unit of max: kWh (a month), kWh daily, kWh/kW, kWh/kW daily (energy) or kW (demand)"
        ),
    )
    rate: float = Field(
        0.0, description="price of the tier [currency per kWh, or per kW for demand]"
    )
    adj: float = Field(0.0, description="adjustment added to the rate [currency per kWh or kW]")
    sell: float = Field(
        0.0, description="price paid for energy exported in this tier [currency per kWh]"
    )

    @field_validator("unit", mode="before")
    @classmethod
    def _unit(cls, value: object) -> object:
        if isinstance(value, str) and value.lower() in _UNITS:
            return _UNITS[value.lower()]
        return value


class RealTimePrice(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    start: datetime = Field(description="start of the hour the prices hold for, with a time zone")
    buy: float = Field(description="price of imported energy [currency per kWh]")
    sell: float = Field(description="price paid for exported energy [currency per kWh]")


Schedule = list[list[int]]


class Tariff(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")

    name: str = Field("tariff", description="the tariff's name (on bills)")
    energyratestructure: list[list[Tier]] = Field(
        [],
        description=(
            "energy rate periods, each a list of tiers {max [kWh per month], rate, adj, sell}"
        ),
    )
    energyweekdayschedule: Schedule | None = Field(
        None,
        description=(
            "energy period index for each month (12 rows) and local hour (24 columns) on weekdays"
        ),
    )
    energyweekendschedule: Schedule | None = Field(
        None, description="energy period index for each month and local hour on weekends"
    )
    demandratestructure: list[list[Tier]] = Field(
        [],
        description=(
            "time-of-use demand charge periods, each a list of tiers {max [kW], rate "
            "[currency per kW]}"
        ),
    )
    demandweekdayschedule: Schedule | None = Field(
        None, description="demand period index for each month and local hour on weekdays"
    )
    demandweekendschedule: Schedule | None = Field(
        None, description="demand period index for each month and local hour on weekends"
    )
    flatdemandstructure: list[list[Tier]] = Field(
        [],
        description="monthly (flat) demand charge periods, each a list of tiers [currency per kW]",
    )
    flatdemandmonths: list[int] | None = Field(
        None, description="flat demand period index for each of the 12 months"
    )
    fixedchargefirstmeter: float = Field(
        0.0, description="fixed charge [currency per fixedchargeunits]"
    )
    fixedchargeunits: MoneyUnit = Field(
        "$/month", description="unit of the fixed charge: $/month, $/day (x 365/12) or $/year"
    )
    mincharge: float = Field(0.0, description="minimum bill [currency per minchargeunits]")
    minchargeunits: MoneyUnit = Field(
        "$/month",
        description="unit of the minimum bill: $/month, $/day (x 365/12) or $/year (annual)",
    )
    dgrules: Literal[
        "Net Metering", "Net Billing Instantaneous", "Net Billing Hourly", "Buy All Sell All"
    ] = Field(
        "Net Metering",
        description=(
            "how exports are credited: Net Metering (the default, as in NREL's reading), Net "
            "Billing Instantaneous, Net Billing Hourly or Buy All Sell All"
        ),
    )
    nm_credit_month: int = Field(
        12, ge=1, le=12, description="true-up month of net metering and net billing credits"
    )
    nm_yearend_sell_rate: float = Field(
        0.0, description="price paid at the true-up for kWh still in credit [currency per kWh]"
    )
    nb_credit_expire: bool = Field(
        False, description="Net Billing Hourly: credit left at the true-up is lost, not paid"
    )
    nb_apply_credit_current_month: bool = Field(
        False, description="Net Billing Hourly: a month's credit pays that month's energy first"
    )
    realtime: list[RealTimePrice] = Field(
        [], description="hourly buy and sell prices that replace the energy rates when present"
    )

    @model_validator(mode="after")
    def _check(self) -> Tariff:
        for name, structure in (
            ("energy", self.energyratestructure),
            ("demand", self.demandratestructure),
        ):
            weekday = getattr(self, f"{name}weekdayschedule")
            weekend = getattr(self, f"{name}weekendschedule")
            if structure and (weekday is None or weekend is None):
                raise ValueError(
                    f"{name}ratestructure needs {name}weekdayschedule and {name}weekendschedule"
                )
            for label, sched in (("weekday", weekday), ("weekend", weekend)):
                if sched is None:
                    continue
                if len(sched) != 12 or any(len(row) != 24 for row in sched):
                    raise ValueError(f"{name}{label}schedule must be 12 months x 24 hours")
                bad = {p for row in sched for p in row if not 0 <= p < len(structure)}
                if bad:
                    raise ValueError(
                        f"{name}{label}schedule names periods {sorted(bad)} that "
                        f"{name}ratestructure does not have"
                    )
        if self.flatdemandstructure and (
            self.flatdemandmonths is None or len(self.flatdemandmonths) != 12
        ):
            raise ValueError("flatdemandstructure needs flatdemandmonths: 12 period indices")
        return self
