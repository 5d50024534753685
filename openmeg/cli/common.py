"""What the ``openmeg`` commands share: errors on stderr, the site, the store, instants."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, NoReturn

import typer
from rich.console import Console

from openmeg.core.errors import SiteFileError

if TYPE_CHECKING:
    from datetime import datetime

    from openmeg.core.site import Site
    from openmeg.core.store import Store

err_console = Console(stderr=True, soft_wrap=True)

EXIT_BAD_INPUT = 2

SITE = typer.Option("demo", help="site file, or a shipped site name")
STORE = typer.Option("", help="store URL (default: SQLite file openmeg-<site>.db)")


def fail(message: str, code: int = EXIT_BAD_INPUT) -> NoReturn:
    """Say what is wrong on stderr and exit (2: bad input)."""
    err_console.print(f"error: {message}", markup=False, highlight=False)
    raise typer.Exit(code)


SHOWN_PROBLEMS = 20
"""Problems said one a line, at most; the rest are counted ("and N more")."""


def fail_all(problems: Iterable[object], code: int = EXIT_BAD_INPUT) -> NoReturn:
    """Say the problems on stderr, one line each (the first ``SHOWN_PROBLEMS``, then how many
    more), and exit (2: bad input)."""
    said = list(problems)
    for problem in said[:SHOWN_PROBLEMS]:
        err_console.print(f"error: {problem}", markup=False, highlight=False, soft_wrap=True)
    if len(said) > SHOWN_PROBLEMS:
        more = len(said) - SHOWN_PROBLEMS
        err_console.print(
            f"error: and {more} more problem{'s' if more > 1 else ''}; "
            "fix these and try again to see the rest",
            markup=False,
            highlight=False,
        )
    raise typer.Exit(code)


def load_site_or_exit(name_or_path: str) -> Site:
    """The site, or exit 2 with one line per problem."""
    from openmeg.core.site import load_site

    try:
        return load_site(name_or_path)
    except SiteFileError as err:
        fail_all(err.problems)


def load_site_with_notes_or_exit(name_or_path: str) -> tuple[Site, list[str]]:
    """The site and its deprecation notes, or exit 2 with one line per problem."""
    from openmeg.core.site import load_site_with_notes

    try:
        return load_site_with_notes(name_or_path)
    except SiteFileError as err:
        fail_all(err.problems)


def load_simulated_site_or_exit(name_or_path: str, scenario: str | None = None) -> Site:
    """The site with a scenario the simulated field can play (its own, or the scenario file
    ``scenario`` in its place), or exit 2 with one line per problem (a site without a scenario,
    a device without its physics)."""
    from openmeg.core.scenario_file import simulated_scenario, with_scenario_file
    from openmeg.core.site import load_site, resolve_site_path

    try:
        site = load_site(name_or_path)
        if scenario:
            site = with_scenario_file(site, scenario)
        simulated_scenario(site, scenario or str(resolve_site_path(name_or_path)))
    except SiteFileError as err:
        fail_all(err.problems)
    return site


def default_store(site_id: str) -> str:
    """The SQLite file the commands share when no store URL is given."""
    return f"sqlite+pysqlite:///openmeg-{site_id}.db"


def open_store(url: str, site_id: str) -> Store:
    """The store at ``url`` (or the default SQLite file), its schema in place; a URL that
    names no store it can open (an unknown scheme, a server that does not answer, a file that
    cannot be opened) exits 2 with one line saying so."""
    from sqlalchemy.exc import SQLAlchemyError

    from openmeg.core.errors import StoreError
    from openmeg.core.store import Store

    target = url or default_store(site_id)
    try:
        db = Store(target)
    except StoreError as err:
        fail(
            f"--store {_shown(target)!r} cannot be opened: cannot use store URL "
            f"({err.__cause__ or err}); give one like sqlite+pysqlite:///meg.db or "
            "postgresql+psycopg://USER@HOST/DB"
        )
    try:
        db.create_schema()
    except (StoreError, SQLAlchemyError, OSError) as err:
        db.close()
        cause = err.__cause__ if isinstance(err, StoreError) and err.__cause__ else err
        reason = str(getattr(cause, "orig", None) or cause).strip().splitlines()[0]
        fail(f"--store {_shown(target)!r} cannot be opened: {reason}")
    return db


def _shown(url: str) -> str:
    """``url`` with its password hidden."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        return make_url(url).render_as_string(hide_password=True)
    except (ArgumentError, ValueError):  # a URL that does not parse is shown as given
        return url


def open_site_store(site_name: str, store: str) -> tuple[Site, Store]:
    """The site (or exit 2) and its store."""
    site = load_site_or_exit(site_name)
    return site, open_store(store, site.site.id)


FIRST_YEAR, LAST_YEAR = 1900, 2199
"""The instants the commands accept: from 1900-01-01 to the end of 2199 (UTC), well inside
what the arrays' datetime64[ns] can hold (1677 to 2262)."""


def utc(text: str) -> datetime:
    """An ISO 8601 instant; UTC when it names no zone; ``ValueError`` when it is not one or
    lies outside the accepted years (``FIRST_YEAR`` to ``LAST_YEAR``)."""
    from datetime import UTC
    from datetime import datetime as dt

    given = dt.fromisoformat(text.replace("Z", "+00:00"))
    t: datetime | None
    try:
        t = given.astimezone(UTC) if given.tzinfo else given.replace(tzinfo=UTC)
    except OverflowError:  # a zone that moves it past year 1 or 9999
        t = None
    if t is None or not FIRST_YEAR <= t.year <= LAST_YEAR:
        raise ValueError(
            f"{text!r} is out of range: instants from {FIRST_YEAR}-01-01 to "
            f"{LAST_YEAR}-12-31 (UTC) are accepted"
        )
    return t


def period(start: str, end: str) -> tuple[datetime, datetime]:
    """``--from`` and ``--to`` as instants, or exit 2 saying what is wrong with them."""
    try:
        t0, t1 = utc(start), utc(end)
    except ValueError as err:
        fail(f"not an instant: {err}")
    if t1 <= t0:
        fail("--to must come after --from")
    return t0, t1


def broker_address(text: str) -> tuple[str, int]:
    """``HOST:PORT`` of an MQTT broker (host 127.0.0.1 when only ``:PORT`` is given)."""
    host, _, port = text.rpartition(":")
    return host or "127.0.0.1", int(port)
