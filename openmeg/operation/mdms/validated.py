"""Validated readings on top of the raw ones: every VEE run and every manual edit adds a
version of an interval, flagged with its quality and how it came about; nothing is overwritten,
and raw readings stay as they came."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pandas as pd
import sqlalchemy as sa

from openmeg.core.audit import AuditLog
from openmeg.core.errors import OpenMegError
from openmeg.core.store import Store, as_utc, metadata
from openmeg.operation.mdms.estimate import estimate
from openmeg.operation.mdms.store import MeterReadings
from openmeg.operation.mdms.vee import VeeConfig, expected_index, validate

ESTIMATE_ON = frozenset({"gap", "negative", "high", "low", "spike"})
"""Rules whose intervals are replaced by an estimate; the others are flagged for review."""

validated = sa.Table(
    "validated_readings",
    metadata,
    sa.Column("meter", sa.String(64), nullable=False),
    sa.Column("channel", sa.String(16), nullable=False),
    sa.Column("interval_start", sa.DateTime(timezone=True), nullable=False),
    sa.Column("version", sa.Integer, nullable=False),
    sa.Column("value_kwh", sa.Float, nullable=False),
    sa.Column("quality", sa.String(16), nullable=False),
    sa.Column("method", sa.String(32), nullable=False),
    sa.Column("user", sa.String(64), nullable=False),
    sa.Column("reason", sa.Text, nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint("meter", "channel", "interval_start", "version"),
)

vee_flags = sa.Table(
    "vee_flags",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("meter", sa.String(64), nullable=False),
    sa.Column("channel", sa.String(16), nullable=False),
    sa.Column("interval_start", sa.DateTime(timezone=True), nullable=False),
    sa.Column("rule", sa.String(32), nullable=False),
    sa.Column("detail", sa.Text, nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
)


class EditError(OpenMegError):
    """A manual edit was refused."""


@dataclass(frozen=True, kw_only=True)
class VeeReport:
    flags: pd.DataFrame
    new_versions: int
    estimated: int


class ValidatedReadings:
    def __init__(self, store: Store, site: str) -> None:
        self.store = store
        self.site = site
        self.raw = MeterReadings(store)
        metadata.create_all(store.engine, tables=[validated, vee_flags])

    def latest(self, meter: str, channel: str, start: datetime, end: datetime) -> pd.DataFrame:
        """The newest version of each interval: value, quality, method, version."""
        t = validated.c
        q = sa.select(
            t.interval_start, t.version, t.value_kwh, t.quality, t.method, t.user, t.reason
        ).where(
            t.meter == meter,
            t.channel == channel,
            t.interval_start >= as_utc(start),
            t.interval_start < as_utc(end),
        )
        with self.store.engine.connect() as conn:
            frame = pd.DataFrame(
                conn.execute(q).all(),
                columns=[
                    "interval_start",
                    "version",
                    "value_kwh",
                    "quality",
                    "method",
                    "user",
                    "reason",
                ],
            )
        if frame.empty:
            return frame
        frame["interval_start"] = pd.to_datetime(frame["interval_start"], utc=True)
        frame = frame.sort_values(["interval_start", "version"]).groupby("interval_start").tail(1)
        return frame.reset_index(drop=True)

    def run_vee(
        self,
        meter: str,
        channel: str,
        start: datetime,
        end: datetime,
        cfg: VeeConfig,
        *,
        active: bool = True,
        registers: pd.Series | None = None,
        now: datetime | None = None,
    ) -> VeeReport:
        """Validate ``[start, end)``, estimate what must be, store new versions where changed."""
        now = now or datetime.now(UTC)
        raw = self.raw.series(meter, channel, start, end)
        if registers is None:
            stored = self.raw.registers(meter, channel, start, end)
            registers = stored if len(stored) >= 2 else None
        history = self.raw.series(meter, channel, start - timedelta(weeks=4), start)
        flags = validate(
            raw,
            start=pd.Timestamp(start),
            end=pd.Timestamp(end),
            cfg=cfg,
            active=active,
            registers=registers,
        )
        replace = pd.DatetimeIndex(flags.interval_start[flags.rule.isin(ESTIMATE_ON)]).unique()
        good = raw.drop(replace, errors="ignore")
        values, methods = estimate(
            good,
            replace.sort_values(),
            cfg,
            history=pd.concat([history, good]),
            registers=registers,
        )
        frame = pd.DataFrame({"value_kwh": good, "quality": "good", "method": "measured"})
        est = pd.DataFrame({"value_kwh": values, "quality": "estimated", "method": methods})
        frame = pd.concat([frame, est]).sort_index()
        frame = frame.reindex(expected_index(pd.Timestamp(start), pd.Timestamp(end), cfg))
        frame = frame.dropna(subset=["value_kwh"])
        current = self.latest(meter, channel, start, end).set_index("interval_start")
        rows = []
        for ts, row in frame.iterrows():
            old = current.loc[ts] if ts in current.index else None
            if old is not None and (
                old["quality"] == "edited"
                or (
                    abs(old["value_kwh"] - row["value_kwh"]) < 1e-12
                    and old["quality"] == row["quality"]
                )
            ):
                continue
            rows.append(
                {
                    "meter": meter,
                    "channel": channel,
                    "interval_start": ts.to_pydatetime(),
                    "version": int(old["version"]) + 1 if old is not None else 1,
                    "value_kwh": float(row["value_kwh"]),
                    "quality": row["quality"],
                    "method": row["method"],
                    "user": "vee",
                    "reason": "",
                    "created_at": now,
                }
            )
        with self.store.engine.begin() as conn:
            if rows:
                conn.execute(validated.insert(), rows)
            if not flags.empty:
                conn.execute(
                    vee_flags.insert(),
                    [
                        {
                            "meter": meter,
                            "channel": channel,
                            "interval_start": ts.to_pydatetime(),
                            "rule": rule,
                            "detail": detail,
                            "created_at": now,
                        }
                        for ts, rule, detail in zip(
                            flags.interval_start, flags.rule, flags.detail, strict=True
                        )
                    ],
                )
        return VeeReport(flags=flags, new_versions=len(rows), estimated=len(est))

    def edit(
        self,
        meter: str,
        channel: str,
        interval_start: datetime,
        value_kwh: float,
        *,
        user: str,
        reason: str,
        audit: AuditLog,
        now: datetime | None = None,
    ) -> int:
        """A manual edit: a new version flagged ``edited``, with who and why, in the audit trail."""
        if not user.strip() or not reason.strip():
            raise EditError("an edit needs the user who makes it and the reason")
        if value_kwh != value_kwh or value_kwh < 0:
            raise EditError(f"{value_kwh} kWh cannot be an interval's energy")
        now = now or datetime.now(UTC)
        ts = pd.Timestamp(interval_start).tz_convert("UTC")
        current = self.latest(
            meter, channel, ts.to_pydatetime(), (ts + pd.Timedelta(minutes=1)).to_pydatetime()
        )
        version = int(current["version"].iloc[0]) + 1 if not current.empty else 1
        before = float(current["value_kwh"].iloc[0]) if not current.empty else float("nan")
        with self.store.engine.begin() as conn:
            conn.execute(
                validated.insert(),
                {
                    "meter": meter,
                    "channel": channel,
                    "interval_start": ts.to_pydatetime(),
                    "version": version,
                    "value_kwh": value_kwh,
                    "quality": "edited",
                    "method": "manual",
                    "user": user,
                    "reason": reason,
                    "created_at": now,
                },
            )
        self.store.add_event(
            ts=now,
            site=self.site,
            kind="meter_edit",
            source=user,
            code=f"{meter}/{channel}",
            text=f"{ts.isoformat()}: {before:g} -> {value_kwh:g} kWh ({reason})",
        )
        audit.append(
            ts=now,
            actor=user,
            action="meter_edit",
            target=f"{meter}/{channel}/{ts.isoformat()}",
            detail={
                "before_kwh": None if before != before else before,
                "after_kwh": value_kwh,
                "reason": reason,
                "version": version,
            },
        )
        return version
