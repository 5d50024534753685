"""A live MEG with its API on 127.0.0.1, running in a thread of its own (its own event loop),
operating a simulated field over Modbus TCP, both stepped in lockstep; users of every role
with known passwords."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Coroutine
from concurrent.futures import Future
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, ClassVar, Self, TypeVar

import httpx
import pandas as pd

from openmeg.app import LiveApi, LiveMeg
from openmeg.core.bus import InProcessBus
from openmeg.core.clock import Clock, SimClock, WallClock
from openmeg.core.site import Site, load_site
from openmeg.core.store import Store, sqlite_url
from openmeg.operation.mdms.store import MeterReadings
from openmeg.operation.mdms.validated import ValidatedReadings
from openmeg.operation.mdms.vee import VeeConfig
from openmeg.protocols.http_server import HttpServer
from openmeg.sim.control import control_app
from openmeg.sim.field import Field
from tests.field_harness import addresses
from tests.keys import shared_keystore
from tests.services import free_port

T = TypeVar("T")
START = datetime(2026, 6, 1, 16, 0, tzinfo=UTC)
PASSWORD = "correct horse battery"
USERS = {
    "operator": ("op", "operator", None),
    "prosumer": ("pro-h01", "prosumer", "h01"),
    "prosumer_h05": ("pro-h05", "prosumer", "h05"),
    "service_provider": ("esco", "service_provider", None),
    "auditor": ("audit", "auditor", None),
}


class Harness:
    users: ClassVar[dict[str, tuple[str, str, str | None]]] = USERS
    """The users the API knows, by the key of their token: name, role and customer."""

    def __init__(self, tmp: Path, *, step_every_s: float = 0.05, wall: Clock | None = None) -> None:
        """``wall``: the API's real time (tokens, logins), a ``WallClock()`` unless a test
        gives a clock it moves itself."""
        self.tmp, self.step_every_s = tmp, step_every_s
        self.wall: Clock = wall or WallClock()
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._main, name="openmeg-api-harness", daemon=True)
        self.tokens: dict[str, str] = {}

    def __enter__(self) -> Self:
        self._thread.start()
        self._ready.wait(60)
        if self._error is not None:
            raise self._error
        for key, (name, _, _) in self.users.items():
            self.tokens[key] = self.login(name, PASSWORD)
        return self

    def __exit__(self, *exc: object) -> None:
        self.call(self._stop())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(30)

    def login(self, name: str, password: str) -> str:
        r = httpx.post(
            f"{self.url}/api/v1/auth/token",
            data={"grant_type": "password", "username": name, "password": password},
        )
        assert r.status_code == 200, r.text
        return str(r.json()["access_token"])

    def client(self, role: str | None = None) -> httpx.Client:
        headers = {"Authorization": f"Bearer {self.tokens[role]}"} if role else {}
        return httpx.Client(base_url=self.url, headers=headers, timeout=20)

    def call(self, coro: Coroutine[Any, Any, T]) -> T:
        """Run a coroutine in the MEG's loop and wait for it."""
        fut: Future[T] = asyncio.run_coroutine_threadsafe(coro, self.loop)
        return fut.result(120)

    def _main(self) -> None:
        asyncio.set_event_loop(self.loop)
        try:
            self.loop.run_until_complete(self._start())
        except BaseException as err:  # surfaced in __enter__
            self._error = err
            self._ready.set()
            return
        self._ready.set()
        self.loop.run_forever()
        self.loop.close()

    def _open_spine(self) -> Site:
        """The demo site, with a fresh SQLite store, an in-process bus and a clock at ``START``."""
        self.store = Store(sqlite_url(self.tmp / "meg.db"))
        self.store.create_schema()
        self.bus = InProcessBus()
        self.clock = SimClock(START)
        return load_site("demo")

    async def _start(self) -> None:
        site = self._open_spine()
        self.field = Field(site, clock=self.clock, base_port=0, horizon_h=2.0)
        await self.field.start()
        # a first step (and power flow) before the platform connects, as `openmeg sim serve`
        # steps at once: the meters serve their voltage when the feeder discovers them
        self.field.step()
        self.meg = LiveMeg(
            site,
            clock=self.clock,
            bus=self.bus,
            store=self.store,
            keystore=shared_keystore(),
            addresses=addresses(self.field),
            step_s=1.0,
            persist_every_s=60.0,
        )
        await self.meg.start()
        # the field's control interface, as `openmeg sim serve` has it: the simulator panel's
        self.control = HttpServer(control_app(self.field), port=0, name="the field's control")
        await self.control.start()
        self.api = LiveApi(
            self.meg,
            self.wall,
            port=self.port,
            field="simulated",
            field_control=self.control.url,
        )
        await self.api.start()
        self._create_users()
        self._running = True
        self._stepper = asyncio.create_task(self._step())

    def _create_users(self) -> None:
        """The API's identities of ``users``, each with the password ``PASSWORD``."""
        ids = self.api.services.identities
        for name, role, customer in self.users.values():
            ids.create(name, role, customer=customer, secret=PASSWORD, now=START)

    async def _step(self) -> None:
        while self._running:
            self.field.step()
            self.clock.advance(1.0)
            await self.meg.step()
            await asyncio.sleep(self.step_every_s)

    async def _stop(self) -> None:
        """Stop stage by stage; a stage that hangs is named."""
        self._running = False
        for stage, step in (
            ("the stepping", lambda: self._stepper),
            ("the API", self.api.stop),
            ("the field's control", self.control.stop),
            ("the MEG", self.meg.stop),
            ("the field", self.field.stop),
        ):
            try:
                await asyncio.wait_for(step(), 30)
            except TimeoutError:
                raise RuntimeError(f"stopping {stage} took more than 30 s") from None
        self.store.close()


def a_validated_meter_day(
    h: Harness, day: str, missing: tuple[str, ...], *, meter: str = "m-h03", now: datetime = START
) -> None:
    """The local ``day`` of ``meter``'s import readings, 0.25 kWh each, through the MDMS with
    the local interval starts ``missing`` never sent; validated by VEE, which estimates them."""
    tz = h.meg.site.site.timezone
    start, end = pd.Timestamp(day, tz=tz), pd.Timestamp(day, tz=tz) + pd.Timedelta(days=1)
    idx = pd.date_range(
        start.tz_convert("UTC"), end.tz_convert("UTC"), freq="15min", inclusive="left"
    )
    gaps = [pd.Timestamp(t, tz=tz).tz_convert("UTC") for t in missing]
    kwh = pd.Series(0.25, index=idx).drop(gaps)
    frame = pd.DataFrame(
        {"meter": meter, "channel": "import", "interval_start": kwh.index, "value_kwh": kwh}
    )
    site = h.meg.site
    MeterReadings(h.store).ingest(
        frame, meters={m.id for m in site.meters}, source="test", received_at=datetime.now(UTC)
    )
    ValidatedReadings(h.store, site.site.id).run_vee(
        meter,
        "import",
        start.to_pydatetime(),
        end.to_pydatetime(),
        VeeConfig(timezone=tz, **site.vee.model_dump()),
        now=now,
    )
