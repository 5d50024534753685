"""The site file's tariff schema: NREL's Utility Rate Database (URDB) JSON, with pydantic.

Fields used: ``energyratestructure`` (periods of tiers ``{max, rate, adj, sell}``, kWh per
month), ``energyweekdayschedule``/``energyweekendschedule`` (12 x 24 period indices),
``demandratestructure`` with its two schedules (time-of-use demand, $/kW), ``flatdemandstructure``
and ``flatdemandmonths`` (monthly demand), ``fixedchargefirstmeter`` ($/month), ``mincharge``
($/month) and ``dgrules`` ("Net Metering", "Net Billing Instantaneous", "Net Billing Hourly",
"Buy All Sell All"). openmeg adds ``realtime``: hourly buy and sell prices that replace the
energy rates when present.

Only the schema lives here (the site file validates it); billing is in ``openmeg.provider``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator


class Tier(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")
    max: float | None = Field(None, gt=0, description="upper bound of the tier, kWh or kW")
    rate: float = 0.0
    adj: float = 0.0
    sell: float = 0.0


class RealTimePrice(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    start: datetime
    buy: float
    sell: float


Schedule = list[list[int]]


class Tariff(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")

    name: str = "tariff"
    energyratestructure: list[list[Tier]] = []
    energyweekdayschedule: Schedule | None = None
    energyweekendschedule: Schedule | None = None
    demandratestructure: list[list[Tier]] = []
    demandweekdayschedule: Schedule | None = None
    demandweekendschedule: Schedule | None = None
    flatdemandstructure: list[list[Tier]] = []
    flatdemandmonths: list[int] | None = None
    fixedchargefirstmeter: float = 0.0
    mincharge: float = 0.0
    dgrules: Literal[
        "Net Metering", "Net Billing Instantaneous", "Net Billing Hourly", "Buy All Sell All"
    ] = "Net Billing Instantaneous"
    realtime: list[RealTimePrice] = []

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
