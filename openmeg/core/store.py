"""The store: SQLAlchemy Core over SQLite (default, WAL, ``synchronous=FULL``) or PostgreSQL.

Time series live in a narrow table written in batches; events (alarms, commands, mode changes)
and persisted device state have tables of their own.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlalchemy.exc import SQLAlchemyError

from openmeg.core.errors import StoreError
from openmeg.core.points import Point, PointId, Quality
from openmeg.core.private_files import make_private, tighten

T = TypeVar("T")

metadata = sa.MetaData()

point_history = sa.Table(
    "point_history",
    metadata,
    sa.Column("site", sa.String(64), nullable=False),
    sa.Column("device", sa.String(64), nullable=False),
    sa.Column("name", sa.String(64), nullable=False),
    sa.Column("ts", sa.DateTime(timezone=True), nullable=False),
    sa.Column("value", sa.Float, nullable=True),  # NULL: no value (NaN), see quality
    sa.Column("unit", sa.String(16), nullable=False),
    sa.Column("quality", sa.String(16), nullable=False),
    sa.PrimaryKeyConstraint("site", "device", "name", "ts"),
)

events = sa.Table(
    "events",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("ts", sa.DateTime(timezone=True), nullable=False, index=True),
    sa.Column("site", sa.String(64), nullable=False),
    sa.Column("kind", sa.String(32), nullable=False),
    sa.Column("source", sa.String(128), nullable=False),
    sa.Column("code", sa.String(64), nullable=False),
    sa.Column("text", sa.Text, nullable=False),
    sa.Column("severity", sa.String(16), nullable=False),
)

device_state = sa.Table(
    "device_state",
    metadata,
    sa.Column("site", sa.String(64), nullable=False),
    sa.Column("device", sa.String(64), nullable=False),
    sa.Column("ts", sa.DateTime(timezone=True), nullable=False),
    sa.Column("state", sa.Text, nullable=False),
    sa.PrimaryKeyConstraint("site", "device"),
)


def append_only(table: sa.Table, refusal: str) -> None:
    """Make ``table`` refuse every UPDATE and DELETE with ``refusal`` (triggers created with
    it, on SQLite and on PostgreSQL): rows once written are never changed."""
    name = table.name
    for op in ("UPDATE", "DELETE"):
        sa.event.listen(
            table,
            "after_create",
            sa.DDL(  # type: ignore[no-untyped-call]
                f"CREATE TRIGGER {name}_no_{op.lower()} BEFORE {op} ON {name} "
                f"BEGIN SELECT RAISE(ABORT, '{refusal}'); END"
            ).execute_if(dialect="sqlite"),
        )
    sa.event.listen(
        table,
        "after_create",
        sa.DDL(  # type: ignore[no-untyped-call]
            f"CREATE OR REPLACE FUNCTION {name}_frozen() RETURNS trigger LANGUAGE plpgsql AS "
            f"$$ BEGIN RAISE EXCEPTION '{refusal}'; END $$; "
            f"CREATE TRIGGER {name}_frozen BEFORE UPDATE OR DELETE ON {name} "
            f"FOR EACH ROW EXECUTE FUNCTION {name}_frozen()"
        ).execute_if(dialect="postgresql"),
    )


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cur = dbapi_connection.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=FULL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.close()


def as_utc(ts: datetime) -> datetime:
    """``ts`` in UTC (naive taken as UTC): SQLite keeps no zone, so every stored and every
    compared instant goes in as UTC."""
    return ts.replace(tzinfo=UTC) if ts.tzinfo is None else ts.astimezone(UTC)


def _private_sqlite_files(database: str | None) -> None:
    """The SQLite file created readable by its owner only (mode 0600) before SQLite opens it
    (its -wal and -shm files take its mode); existing ones tightened, with a warning."""
    if not database or database == ":memory:" or database.startswith("file:"):
        return
    path = Path(database)
    with contextlib.suppress(OSError):  # a missing folder: SQLite says so when it connects
        make_private(path)
    for suffix in ("-wal", "-shm", "-journal"):
        tighten(path.with_name(path.name + suffix))


def sqlite_url(path: Path) -> str:
    return f"sqlite+pysqlite:///{path}"


class Store:
    """Durable storage of points, events and device state."""

    def __init__(self, url: str) -> None:
        try:
            engine = sa.create_engine(url, future=True)
        except (SQLAlchemyError, ValueError) as err:
            raise StoreError(f"cannot use store URL {url!r}: {err}") from err
        if engine.dialect.name == "sqlite":
            _private_sqlite_files(engine.url.database)
            sa.event.listen(engine, "connect", _sqlite_pragmas)
        self.engine: Engine = engine
        self.url = url

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    async def in_thread(self, work: Callable[..., T], /, *args: Any) -> T:
        """``work(*args)`` in a worker thread, off the event loop (the engine's pool gives each
        thread its own connection); in the loop's thread for an in-memory SQLite database,
        which lives in one connection of one thread."""
        if self.dialect == "sqlite" and self.engine.url.database in (None, "", ":memory:"):
            return work(*args)
        return await asyncio.to_thread(work, *args)

    def create_schema(self) -> None:
        try:
            metadata.create_all(self.engine)
        except SQLAlchemyError as err:
            raise StoreError(f"cannot create the schema in {self.url!r}: {err}") from err

    def close(self) -> None:
        self.engine.dispose()

    def write_points(self, points: Sequence[Point]) -> int:
        """Store a batch in one transaction; a value already stored for (point, ts) is kept.

        Returns how many points were new.
        """
        if not points:
            return 0
        rows = [
            {
                "site": p.id.site,
                "device": p.id.device,
                "name": p.id.name,
                "ts": as_utc(p.ts),
                "value": float(p.value) if p.value == p.value else None,
                "unit": p.unit,
                "quality": str(p.quality),
            }
            for p in points
        ]
        stmt = self.insert_ignore(point_history, ["site", "device", "name", "ts"]).returning(
            point_history.c.ts
        )
        try:
            with self.engine.begin() as conn:
                inserted = len(conn.execute(stmt, rows).all())
        except SQLAlchemyError as err:
            raise StoreError(f"writing {len(rows)} points failed, none stored: {err}") from err
        return inserted

    def insert_ignore(self, table: sa.Table, keys: list[str]) -> Any:
        """An INSERT that leaves rows already there (by ``keys``) as they are."""
        if self.dialect == "postgresql":
            from sqlalchemy.dialects.postgresql import insert as pg_insert

            return pg_insert(table).on_conflict_do_nothing(index_elements=keys)
        if self.dialect == "sqlite":
            from sqlalchemy.dialects.sqlite import insert as sqlite_insert

            return sqlite_insert(table).on_conflict_do_nothing(index_elements=keys)
        raise StoreError(f"unsupported database {self.dialect!r}: use SQLite or PostgreSQL")

    def history(
        self, point: PointId, start: datetime | None = None, end: datetime | None = None
    ) -> list[Point]:
        """Stored values of ``point`` with ``start <= ts < end``, oldest first."""
        t = point_history.c
        q = sa.select(t.ts, t.value, t.unit, t.quality).where(
            t.site == point.site, t.device == point.device, t.name == point.name
        )
        if start is not None:
            q = q.where(t.ts >= as_utc(start))
        if end is not None:
            q = q.where(t.ts < as_utc(end))
        with self.engine.connect() as conn:
            rows = conn.execute(q.order_by(t.ts)).all()
        return [
            Point(
                id=point,
                value=float("nan") if r.value is None else r.value,
                unit=r.unit,
                ts=as_utc(r.ts),
                quality=Quality(r.quality),
            )
            for r in rows
        ]

    def count_points(self, site: str) -> int:
        q = (
            sa.select(sa.func.count())
            .select_from(point_history)
            .where(point_history.c.site == site)
        )
        with self.engine.connect() as conn:
            return int(conn.execute(q).scalar_one())

    def add_event(
        self,
        *,
        ts: datetime,
        site: str,
        kind: str,
        source: str,
        code: str,
        text: str,
        severity: str = "info",
    ) -> None:
        row = {
            "ts": as_utc(ts),
            "site": site,
            "kind": kind,
            "source": source,
            "code": code,
            "text": text,
            "severity": severity,
        }
        with self.engine.begin() as conn:
            conn.execute(events.insert(), row)

    def events(self, site: str, kind: str | None = None) -> list[dict[str, Any]]:
        q = sa.select(events).where(events.c.site == site)
        if kind is not None:
            q = q.where(events.c.kind == kind)
        with self.engine.connect() as conn:
            return [dict(r._mapping) for r in conn.execute(q.order_by(events.c.id))]

    def save_states(
        self, site: str, ts: datetime, states: Iterable[tuple[str, dict[str, Any]]]
    ) -> None:
        """Persist each device's state (upsert), all in one transaction."""
        rows = [
            {"site": site, "device": dev, "ts": as_utc(ts), "state": json.dumps(state)}
            for dev, state in states
        ]
        if not rows:
            return
        with self.engine.begin() as conn:
            conn.execute(
                device_state.delete().where(
                    device_state.c.site == site,
                    device_state.c.device.in_([r["device"] for r in rows]),
                )
            )
            conn.execute(device_state.insert(), rows)

    def load_states(self, site: str) -> dict[str, dict[str, Any]]:
        q = sa.select(device_state.c.device, device_state.c.state).where(
            device_state.c.site == site
        )
        with self.engine.connect() as conn:
            return {r.device: json.loads(r.state) for r in conn.execute(q)}
