"""What a prosumer's app shows beyond the customer routes: their premises now and today (the
meter's import and export, each device's power in the page's sign convention, batteries' state
of charge, today's energy from the registers), and their trading accounts against the
reference prices they set. A prosumer sees their own only."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

import numpy as np
import pandas as pd
import sqlalchemy as sa
from fastapi import APIRouter, Depends, HTTPException, Query
from pydantic import BaseModel, ConfigDict

from openmeg.api.auth import ERRORS, scope, services
from openmeg.api.context import ApiServices, Scope
from openmeg.api.routes_operation import span
from openmeg.core.store import as_utc, point_history
from openmeg.customer.trading import ReferencePrices, accounting
from openmeg.customer.trading_desk import TradingError, meter_of
from openmeg.operation.mdms.store import INTERVAL
from openmeg.operation.mdms.validated import ValidatedReadings

router = APIRouter(prefix="/api/v1", responses=ERRORS)

SOURCES = frozenset({"pv", "wind", "chp", "fuel_cell"})
"""Devices whose power is shown as production (positive when they produce)."""
STORAGE = frozenset({"battery"})
Role = Literal["source", "storage", "load"]


class _Out(BaseModel):
    model_config = ConfigDict(extra="forbid")


class DeviceNowOut(_Out):
    id: str
    kind: str
    role: Role
    power_kw: float | None
    """Production positive for a source, consumption positive for a load; for storage,
    positive while it discharges, negative while it charges (``charging_kw`` says which)."""
    charging_kw: float | None = None
    discharging_kw: float | None = None
    soc_pct: float | None = None
    capacity_kwh: float | None = None
    today_out_kwh: float | None = None
    """Produced (source), discharged (storage) or used (load) today."""
    today_in_kwh: float | None = None
    """Charged today (storage)."""


class MeterNowOut(_Out):
    id: str
    import_kw: float | None
    export_kw: float | None
    today_import_kwh: float | None
    today_export_kwh: float | None


class PremisesNowOut(_Out):
    customer: str
    ts: datetime
    day_start: datetime
    """The local midnight from which "today" counts."""
    meter: MeterNowOut | None
    consumption_kw: float | None
    """What the premises use now: the meter's net import plus what its sources and storage give."""
    today_consumption_kwh: float | None
    devices: list[DeviceNowOut]


class WindowAccountsOut(_Out):
    from_hour: int
    to_hour: int
    reference_purchase: float | None
    """The purchase reference of this window (None: the hours no window holds)."""
    reference_sale: float | None
    import_kwh: float
    export_kwh: float
    purchases: float
    """What the energy bought cost at the market's purchase prices."""
    sales: float
    """What the energy sold earned at the market's sale prices."""
    mean_purchase_price: float | None
    mean_sale_price: float | None
    purchases_at_reference: float | None
    sales_at_reference: float | None
    saved_against_reference: float | None
    """``purchases_at_reference - purchases``: positive when bought below the reference."""
    gained_against_reference: float | None
    """``sales - sales_at_reference``: positive when sold above the reference."""


class ReferenceAccountsOut(_Out):
    customer: str
    meter: str
    start: datetime
    end: datetime
    trading: bool
    purchases: float
    sales: float
    incentives: float
    net: float
    import_kwh: float
    export_kwh: float
    missing_intervals: int
    windows: list[WindowAccountsOut]
    against_reference: float | None
    """Saved and gained against the reference prices, all windows together."""


def _premises(svc: ApiServices, customer: str, seen: Scope) -> None:
    if customer not in {c.id for c in svc.site.customers}:
        raise HTTPException(404, f"no customer {customer!r}")
    seen.customer(customer)


def _positive(value: float) -> float:
    """``value`` if above zero, else 0 (never -0.0)."""
    return value if value > 0 else 0.0


def _number(value: float | None) -> float | None:
    return None if value is None or value != value else float(value)


def day_start(now: datetime, timezone: str) -> datetime:
    """The local midnight (in ``timezone``) that starts the day holding ``now``, in UTC."""
    local = pd.Timestamp(now).tz_convert(timezone)
    midnight = local.tz_localize(None).normalize().tz_localize(timezone, ambiguous=True)
    return as_utc(midnight.to_pydatetime())


def _register_at(svc: ApiServices, device: str, name: str, at: datetime) -> float | None:
    """An energy register's reading at ``at``: its last stored value before, or else its first
    one after (the MEG started that day)."""
    t = point_history.c
    where = (t.site == svc.site.site.id, t.device == device, t.name == name, t.value.is_not(None))
    before = sa.select(t.value).where(*where, t.ts <= as_utc(at)).order_by(t.ts.desc()).limit(1)
    after = sa.select(t.value).where(*where, t.ts > as_utc(at)).order_by(t.ts).limit(1)
    with svc.store.engine.connect() as conn:
        value = conn.execute(before).scalar()
        if value is None:
            value = conn.execute(after).scalar()
    return _number(value)


def _today(svc: ApiServices, device: str, name: str, now: float | None, start: datetime) -> float:
    """What a register counted since ``start`` (0 if it has no value yet)."""
    if now is None:
        return 0.0
    first = _register_at(svc, device, name, start)
    return _positive(now - first) if first is not None else 0.0


@router.get("/prosumers/{customer}/now", response_model=PremisesNowOut)
def prosumer_now(
    customer: str, svc: ApiServices = Depends(services), seen: Scope = Depends(scope)
) -> PremisesNowOut:
    """The premises now and today: the meter's import and export (kW, and kWh since local
    midnight), each device's power (production and consumption positive), batteries' state of
    charge, and what the premises use."""
    _premises(svc, customer, seen)
    now = svc.clock.now()
    start = day_start(now, svc.site.site.timezone)
    values = svc.scada.state.values

    def live(device: str, name: str) -> float | None:
        v = values.get(device, {}).get(name)
        return None if v is None else _number(v.value)

    meters = [m for m in svc.site.meters if m.customer == customer and m.parent is None]
    meter_out: MeterNowOut | None = None
    net_kw: float | None = None
    today_net: float | None = None
    if meters:
        m = meters[0].id
        net_kw = live(m, "import_kw")
        imp, exp = live(m, "import_kwh"), live(m, "export_kwh")
        today_imp = _today(svc, m, "import_kwh", imp, start) if imp is not None else None
        today_exp = _today(svc, m, "export_kwh", exp, start) if exp is not None else None
        if today_imp is not None and today_exp is not None:
            today_net = today_imp - today_exp
        meter_out = MeterNowOut(
            id=m,
            import_kw=None if net_kw is None else _positive(net_kw),
            export_kw=None if net_kw is None else _positive(-net_kw),
            today_import_kwh=today_imp,
            today_export_kwh=today_exp,
        )
    devices: list[DeviceNowOut] = []
    given_kw, given_kwh = 0.0, 0.0  # what sources and storage give the premises
    for d in svc.site.devices:
        if getattr(d, "owner", None) != customer or d.kind == "sensor":
            continue
        p = live(d.id, "p_kw")  # into the MEG bus positive
        out_reg, in_reg = live(d.id, "energy_kwh"), live(d.id, "energy_in_kwh")
        if d.kind in SOURCES or d.kind in STORAGE:
            given_kw += p or 0.0
        if d.kind in SOURCES:
            today_out = _today(svc, d.id, "energy_kwh", out_reg, start)
            given_kwh += today_out
            devices.append(
                DeviceNowOut(
                    id=d.id, kind=d.kind, role="source", power_kw=p, today_out_kwh=today_out
                )
            )
        elif d.kind in STORAGE:
            today_out = _today(svc, d.id, "energy_kwh", out_reg, start)
            today_in = _today(svc, d.id, "energy_in_kwh", in_reg, start)
            given_kwh += today_out - today_in
            soc = live(d.id, "soc")
            devices.append(
                DeviceNowOut(
                    id=d.id,
                    kind=d.kind,
                    role="storage",
                    power_kw=p,
                    charging_kw=None if p is None else _positive(-p),
                    discharging_kw=None if p is None else _positive(p),
                    soc_pct=None if soc is None else soc * 100.0,
                    capacity_kwh=getattr(d, "capacity_kwh", None),
                    today_out_kwh=today_out,
                    today_in_kwh=today_in,
                )
            )
        else:  # loads and EV chargers: consumption positive
            used = _today(svc, d.id, "energy_in_kwh", in_reg, start) if in_reg is not None else None
            devices.append(
                DeviceNowOut(
                    id=d.id,
                    kind=d.kind,
                    role="load",
                    power_kw=None if p is None else -p,
                    today_out_kwh=used,
                )
            )
    return PremisesNowOut(
        customer=customer,
        ts=now,
        day_start=start,
        meter=meter_out,
        consumption_kw=None if net_kw is None else _positive(net_kw + given_kw),
        today_consumption_kwh=None if today_net is None else _positive(today_net + given_kwh),
        devices=devices,
    )


@router.get("/prosumers/{customer}/trading-accounts", response_model=ReferenceAccountsOut)
def prosumer_trading_accounts(
    customer: str,
    start: datetime = Query(...),
    end: datetime = Query(...),
    svc: ApiServices = Depends(services),
    seen: Scope = Depends(scope),
) -> ReferenceAccountsOut:
    """The trading accounts of ``[start, end)`` by time window of the reference prices set now:
    energy bought and sold at the market's prices, what it would have cost and earned at the
    references, and so what the prosumer saved and gained against them. Each sum is rounded
    half-up to the cent, as the accounting server does."""
    _premises(svc, customer, seen)
    t0, t1 = span(start, end)
    try:
        meter = meter_of(svc.site, customer)
    except TradingError as err:
        raise HTTPException(422, str(err)) from err
    t = svc.trading.get(customer)
    refs: list[ReferencePrices] = list(t.references) if t else []
    incentive = t.incentive_per_kwh if t else 0.0

    idx = pd.date_range(as_utc(t0), as_utc(t1), freq=INTERVAL, inclusive="left")
    readings = ValidatedReadings(svc.store, svc.site.site.id)
    imp = readings.series(meter, "import", t0, t1).reindex(idx)
    exp = readings.series(meter, "export", t0, t1).reindex(idx)
    prices = svc.book.interval_prices(idx, INTERVAL.total_seconds())
    known = prices.priced & imp.notna().to_numpy() & exp.notna().to_numpy()
    imp_kwh = np.where(known, imp.fillna(0.0).to_numpy(), 0.0)
    exp_kwh = np.where(known, exp.fillna(0.0).to_numpy(), 0.0)
    buy, sell = prices.buy, prices.sell
    hour = idx.tz_convert(svc.site.site.timezone).hour.to_numpy() if idx.size else np.zeros(0)

    whole = accounting(imp_kwh, exp_kwh, buy, sell, incentive_per_kwh_sold=incentive)
    windows: list[WindowAccountsOut] = []
    held = np.zeros(idx.size, dtype=bool)
    rows: list[tuple[int, int, ReferencePrices | None, np.ndarray]] = []
    for r in refs:
        mask = (hour >= r.from_hour) & (hour < r.to_hour) & ~held
        held |= mask
        rows.append((r.from_hour, r.to_hour, r, mask))
    if (~held).any():
        rows.append((0, 24, None, ~held))  # the hours no window holds
    against = 0.0 if refs else None
    for lo, hi, ref, mask in rows:
        i_kwh, e_kwh = np.where(mask, imp_kwh, 0.0), np.where(mask, exp_kwh, 0.0)
        acc = accounting(i_kwh, e_kwh, buy, sell)
        bought, sold = float(i_kwh.sum()), float(e_kwh.sum())
        at_ref = (
            None
            if ref is None
            else accounting(
                i_kwh, e_kwh, np.full(idx.size, ref.purchase), np.full(idx.size, ref.sale)
            )
        )
        saved = None if at_ref is None else float(at_ref.purchases - acc.purchases)
        gained = None if at_ref is None else float(acc.sales - at_ref.sales)
        if against is not None and saved is not None and gained is not None:
            against += saved + gained
        windows.append(
            WindowAccountsOut(
                from_hour=lo,
                to_hour=hi,
                reference_purchase=None if ref is None else ref.purchase,
                reference_sale=None if ref is None else ref.sale,
                import_kwh=bought,
                export_kwh=sold,
                purchases=float(acc.purchases),
                sales=float(acc.sales),
                mean_purchase_price=float(np.dot(i_kwh, buy)) / bought if bought > 0 else None,
                mean_sale_price=float(np.dot(e_kwh, sell)) / sold if sold > 0 else None,
                purchases_at_reference=None if at_ref is None else float(at_ref.purchases),
                sales_at_reference=None if at_ref is None else float(at_ref.sales),
                saved_against_reference=saved,
                gained_against_reference=gained,
            )
        )
    return ReferenceAccountsOut(
        customer=customer,
        meter=meter,
        start=t0,
        end=t1,
        trading=t is not None,
        **whole.floats(),
        import_kwh=float(imp_kwh.sum()),
        export_kwh=float(exp_kwh.sum()),
        missing_intervals=int(idx.size - known.sum()),
        windows=windows,
        against_reference=None if against is None else round(against, 2),
    )
