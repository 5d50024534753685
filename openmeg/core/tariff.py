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

Every number must be finite (NaN and infinity are refused, naming the field); rates, adjustments
and sell prices are bounded to ``RATE_MAX`` (1,000 currency units per kWh or kW) and the fixed
charge and minimum bill to ``CHARGE_MAX`` (10,000,000 per their unit), far above any real tariff,
so that a typing error is caught at ``site check`` and not on a bill. Tier units belong to their
structure (energy: kWh, kWh daily, kWh/kW, kWh/kW daily; demand: kW), and the energy periods of
one month must share their tier limits (checked here as at bill time, same message).

Only the schema lives here (the site file validates it); billing is in ``openmeg.provider``.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

TierUnit = Literal["kWh", "kWh daily", "kWh/kW", "kWh/kW daily", "kW"]
_UNITS = {u.lower(): u for u in ("kWh", "kWh daily", "kWh/kW", "kWh/kW daily", "kW")}
MoneyUnit = Literal["$/month", "$/day", "$/year"]
ENERGY_UNITS = ("kWh", "kWh daily", "kWh/kW", "kWh/kW daily")
RATE_MAX = 1000.0  # currency per kWh or kW
CHARGE_MAX = 1e7  # currency per month, day or year


def _rate(default: float, description: str) -> float:
    return Field(default, ge=-RATE_MAX, le=RATE_MAX, allow_inf_nan=False, description=description)


class Tier(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")
    max: float | None = Field(
        None, gt=0, allow_inf_nan=False, description="upper bound of the tier, kWh or kW (finite)"
    )
    unit: TierUnit | None = Field(
        None,
        description=(
            "unit of max: kWh (a month), kWh daily, kWh/kW, kWh/kW daily (energy) or kW (demand)"
        ),
    )
    rate: float = _rate(
        0.0, "price of the tier [currency per kWh, or per kW for demand], |rate| <= 1000"
    )
    adj: float = _rate(0.0, "adjustment added to the rate [currency per kWh or kW], |adj| <= 1000")
    sell: float = _rate(
        0.0, "price paid for energy exported in this tier [currency per kWh], |sell| <= 1000"
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
    buy: float = Field(
        ge=-RATE_MAX,
        le=RATE_MAX,
        allow_inf_nan=False,
        description="price of imported energy [currency per kWh], |buy| <= 1000",
    )
    sell: float = Field(
        ge=-RATE_MAX,
        le=RATE_MAX,
        allow_inf_nan=False,
        description="price paid for exported energy [currency per kWh], |sell| <= 1000",
    )


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
        0.0,
        ge=-CHARGE_MAX,
        le=CHARGE_MAX,
        allow_inf_nan=False,
        description="fixed charge [currency per fixedchargeunits], |charge| <= 10,000,000",
    )
    fixedchargeunits: MoneyUnit = Field(
        "$/month", description="unit of the fixed charge: $/month, $/day (x 365/12) or $/year"
    )
    mincharge: float = Field(
        0.0,
        ge=0.0,
        le=CHARGE_MAX,
        allow_inf_nan=False,
        description="minimum bill [currency per minchargeunits], 0 to 10,000,000",
    )
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
    nm_yearend_sell_rate: float = _rate(
        0.0, "price paid at the true-up for kWh still in credit [currency per kWh], |rate| <= 1000"
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
        if self.flatdemandstructure and self.flatdemandmonths is not None:
            n_flat = len(self.flatdemandstructure)
            wrong = sorted({p for p in self.flatdemandmonths if not 0 <= p < n_flat})
            if wrong:
                raise ValueError(
                    f"flatdemandmonths names periods {wrong} that flatdemandstructure does not have"
                )
        self._check_units()
        if self.energyweekdayschedule is not None and self.energyweekendschedule is not None:
            for m in range(12):
                used = set(self.energyweekdayschedule[m]) | set(self.energyweekendschedule[m])
                problem = tier_limit_problem(self, sorted(used))
                if problem:
                    raise ValueError(problem)
        return self

    def _check_units(self) -> None:
        for name, structure, accepted in (
            ("energyratestructure", self.energyratestructure, ENERGY_UNITS),
            ("demandratestructure", self.demandratestructure, ("kW",)),
            ("flatdemandstructure", self.flatdemandstructure, ("kW",)),
        ):
            for p, tiers in enumerate(structure):
                for t, tier in enumerate(tiers):
                    if tier.unit is not None and tier.unit not in accepted:
                        raise ValueError(
                            f"{name}[{p}][{t}].unit {tier.unit!r} is not a unit of this "
                            f"structure; accepted: {', '.join(accepted)}"
                        )


def _top(tier: Tier) -> float:
    return float("inf") if tier.max is None else tier.max


def tier_limit_problem(tariff: Tariff, present: Sequence[int]) -> str | None:
    """What is wrong with the energy tiers of the periods ``present`` in one month, or None.

    Tiers fill with the month's total (NREL's reading), so every energy period used in a month
    has the same tier limits in one unit. The site file checks it per month of the schedules;
    billing checks it again for the periods a billing month really has.
    """
    structure = tariff.energyratestructure or [[Tier()]]
    if not present:
        return None
    first = structure[int(present[0])]
    units = {t.unit or "kWh" for t in first if t.max is not None}
    if len(units) > 1:
        return (
            f"tariff {tariff.name!r}: energy tiers mix units {sorted(units)}; use one unit for "
            "every tier of a month (kWh, kWh daily, kWh/kW or kWh/kW daily)"
        )
    for p in present:
        tops = [_top(t) for t in structure[int(p)]]
        if tops != [_top(t) for t in first][: len(tops)]:
            return (
                f"tariff {tariff.name!r}: energy period {int(p) + 1} has tier limits {tops}, "
                f"period {int(present[0]) + 1} {[_top(t) for t in first]} in the same month; "
                "tiers fill with the month's total (NREL's reading), so give every period of a "
                "month the same tier limits"
            )
    return None
