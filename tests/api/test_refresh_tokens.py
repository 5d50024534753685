"""Refresh tokens on the live API: login gives one, each refresh rotates it, a spent one
presented again revokes its session (RFC 9700 §4.14.2), the store holds SHA-256 hashes only,
logging out and a new password end sessions, the idle and absolute lifetimes hold, and hostile
input gets an OAuth2 error, never a 500. The API's real-time clock stands still but for what
the tests move it by, so that every lifetime is exact to the second."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import jwt
import pytest
import sqlalchemy as sa

from openmeg.api.login_limit import LoginLimiter
from openmeg.core.clock import WallClock
from openmeg.core.sessions import CAP_S, IDLE_S, refresh_tokens
from openmeg.core.user_admin import reset_secret
from tests.api.harness import PASSWORD, Harness

if TYPE_CHECKING:
    from websockets.exceptions import ConnectionClosed

TOKEN = "/api/v1/auth/token"
LOGOUT = "/api/v1/auth/logout"


@pytest.fixture(scope="module")
def h(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Harness]:
    frozen = time.time()  # real time stands still but for what the tests move it by
    wall = WallClock(source=lambda: frozen)
    with Harness(tmp_path_factory.mktemp("refresh"), wall=wall) as harness:
        yield harness


@pytest.fixture(autouse=True)
def fresh_limits(h: Harness) -> None:
    """Each test starts with no failed logins counted (they share 127.0.0.1)."""
    h.api.services.limiter = LoginLimiter()


def later(h: Harness, seconds: float) -> None:
    """Move the API's real time on by ``seconds``."""
    wall = h.wall
    assert isinstance(wall, WallClock)
    wall.set_offset(wall.offset_s + seconds)


def login(c: httpx.Client, name: str = "op") -> dict[str, Any]:
    r = c.post(TOKEN, data={"grant_type": "password", "username": name, "password": PASSWORD})
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


def refresh(c: httpx.Client, token: str) -> httpx.Response:
    return c.post(TOKEN, data={"grant_type": "refresh_token", "refresh_token": token})


def me(c: httpx.Client, access: str) -> httpx.Response:
    return c.get("/api/v1/me", headers={"Authorization": f"Bearer {access}"})


def refused(r: httpx.Response, error: str, says: str) -> None:
    assert r.status_code == (429 if "too many" in says else 400), r.text
    body = r.json()
    assert body["error"] == error and says in body["error_description"], body
    assert body["detail"] == body["error_description"]
    assert r.headers["cache-control"] == "no-store"


def closes_within(ws: Any, seconds: float) -> ConnectionClosed:
    """The ``ConnectionClosed`` that ends the stream ``ws`` within ``seconds``, its frames
    taken meanwhile; a stream still open then fails the test (it never waits longer)."""
    from websockets.exceptions import ConnectionClosed

    deadline = time.monotonic() + seconds
    frames = 0
    try:
        while (left := deadline - time.monotonic()) > 0:
            ws.recv(timeout=left)
            frames += 1
    except ConnectionClosed as closed:
        return closed
    except TimeoutError:
        pass
    pytest.fail(
        f"the stream was still open {seconds:g} s after its token expired "
        f"({frames} frames came meanwhile): the server did not close it with 4401"
    )


def test_login_gives_a_refresh_token_and_a_refresh_rotates_it(h: Harness) -> None:
    with httpx.Client(base_url=h.url) as c:
        first = login(c)
        assert set(first) == {
            "access_token",
            "token_type",
            "expires_in",
            "refresh_token",
            "refresh_expires_in",
        }
        assert first["token_type"] == "bearer" and first["expires_in"] == 900
        assert first["refresh_expires_in"] == IDLE_S == 12 * 3600
        later(h, 14 * 60)  # a minute before the access token expires
        r = refresh(c, first["refresh_token"])
        assert r.status_code == 200, r.text
        assert r.headers["cache-control"] == "no-store"
        second = r.json()
        assert second["refresh_token"] != first["refresh_token"]
        assert second["access_token"] != first["access_token"]
        claims = jwt.decode(second["access_token"], options={"verify_signature": False})
        assert claims["exp"] - claims["iat"] == 900 and claims["sub"] == "op"
        later(h, 2 * 60)  # the first access token has expired, the new one has not
        assert me(c, first["access_token"]).status_code == 401
        assert me(c, second["access_token"]).json()["name"] == "op"
        # and so on: a dashboard stays signed in for as long as it is used
        token = second["refresh_token"]
        for _ in range(3):
            later(h, 14 * 60)
            r = refresh(c, token)
            assert r.status_code == 200, r.text
            token = r.json()["refresh_token"]
            assert me(c, r.json()["access_token"]).status_code == 200


def test_a_spent_refresh_token_again_revokes_the_whole_session_and_is_audited(
    h: Harness,
) -> None:
    with httpx.Client(base_url=h.url) as c:
        stolen = login(c, "esco")["refresh_token"]
        one = refresh(c, stolen).json()["refresh_token"]  # the owner refreshes
        two = refresh(c, one).json()["refresh_token"]  # and again
        r = refresh(c, stolen)  # the thief tries the copy
        refused(r, "invalid_grant", "was used already: the session is revoked")
        # the owner's newest token is revoked with it: the thief got nothing either way
        refused(refresh(c, two), "invalid_grant", "the session has ended (refresh token reused)")
        refused(refresh(c, one), "invalid_grant", "the session has ended (refresh token reused)")
        # another session of the same user is not touched
        other = login(c, "esco")["refresh_token"]
        assert refresh(c, other).status_code == 200
    records = [r for r in h.api.services.audit.records(limit=10_000) if r.actor == "esco"]
    reused = [r for r in records if r.action == "refresh_reused"]
    assert len(reused) == 1
    assert reused[0].detail["from"] == "127.0.0.1" and reused[0].detail["revoked"] is True
    assert stolen not in str(reused[0].detail)  # the token is not written in the log
    with h.store.engine.connect() as conn:
        family = reused[0].detail["session"]
        rows = conn.execute(
            sa.select(refresh_tokens).where(refresh_tokens.c.family == family)
        ).all()
    assert len(rows) == 3 and all(r.revoked_why == "refresh token reused" for r in rows)


def test_the_store_holds_only_sha256_hashes_of_refresh_tokens(h: Harness) -> None:
    with httpx.Client(base_url=h.url) as c:
        first = login(c, "audit")["refresh_token"]
        second = refresh(c, first).json()["refresh_token"]
    with h.store.engine.connect() as conn:
        rows = conn.execute(sa.select(refresh_tokens)).all()
    stored = {r.token_sha256 for r in rows}
    hashed = {hashlib.sha256(t.encode()).hexdigest() for t in (first, second)}
    assert hashed <= stored
    for token in (first, second):
        assert all(token not in str(tuple(r)) for r in rows)
    family = next(r.family for r in rows if r.token_sha256 in hashed)
    mine = [r for r in rows if r.family == family]
    assert len(mine) == 2 and all(len(r.token_sha256) == 64 for r in mine)
    assert sum(r.spent_at is not None for r in mine) == 1
    # nor anywhere in the database files (SQLite and its write-ahead log)
    for f in Path(h.tmp).glob("meg.db*"):
        data = f.read_bytes()
        assert first.encode() not in data and second.encode() not in data, f


def test_logout_ends_the_session(h: Harness) -> None:
    with httpx.Client(base_url=h.url) as c:
        first = login(c, "pro-h01")
        token = refresh(c, first["refresh_token"]).json()["refresh_token"]
        r = c.post(LOGOUT, data={"refresh_token": token})
        assert r.status_code == 200 and r.json() == {"ended": True}
        refused(refresh(c, token), "invalid_grant", "the session has ended (logged out)")
        # spent tokens of an ended session are refused, not taken for a theft
        refused(refresh(c, first["refresh_token"]), "invalid_grant", "(logged out)")
        assert c.post(LOGOUT, data={"refresh_token": token}).json() == {"ended": False}
        assert c.post(LOGOUT, data={"refresh_token": "x" * 43}).json() == {"ended": False}
        refused(c.post(LOGOUT, data={}), "invalid_request", "needs the session's refresh_token")
    actions = [r.action for r in h.api.services.audit.records(limit=10_000) if r.actor == "pro-h01"]
    assert actions.count("logout") == 1 and "refresh_reused" not in actions


def test_a_new_password_ends_the_users_sessions(h: Harness) -> None:
    svc = h.api.services
    svc.identities.create("kiosk", "auditor", secret=PASSWORD, now=svc.clock.now())
    with httpx.Client(base_url=h.url) as c:
        a = login(c, "kiosk")["refresh_token"]
        b = login(c, "kiosk")["refresh_token"]
        reset_secret(h.store, "kiosk", now=svc.wall.now(), actor="test", audit=svc.audit)
        for token in (a, b):
            refused(refresh(c, token), "invalid_grant", "the session has ended (new password)")
    record = [r for r in svc.audit.records(limit=10_000) if r.target == "password/kiosk"][-1]
    assert record.detail == {"refresh_tokens_revoked": 2}


def test_a_refresh_token_expires_when_idle_and_no_session_outlives_its_cap(h: Harness) -> None:
    with httpx.Client(base_url=h.url) as c:
        idle = login(c, "op")["refresh_token"]
        later(h, IDLE_S - 1)
        idle = refresh(c, idle).json()["refresh_token"]  # just in time: 12 h more
        later(h, IDLE_S)
        refused(refresh(c, idle), "invalid_grant", "the refresh token has expired")

        token = login(c, "op")["refresh_token"]
        used = 0.0
        every = 11 * 3600.0
        while used + every < CAP_S:
            later(h, every)
            used += every
            r = refresh(c, token)
            assert r.status_code == 200, r.text
            token = r.json()["refresh_token"]
        # 15 refreshes 11 h apart: 165 h of the 168 h cap used, 3 h left however it is used
        assert used == 165 * 3600 and r.json()["refresh_expires_in"] == 3 * 3600
        later(h, 3 * 3600 - 60)
        r = refresh(c, token)
        assert r.status_code == 200 and r.json()["refresh_expires_in"] == 60
        later(h, 60)
        refused(refresh(c, r.json()["refresh_token"]), "invalid_grant", "has expired")


def test_hostile_refresh_input_gets_an_oauth2_error_never_a_500(h: Harness) -> None:
    with httpx.Client(base_url=h.url) as c:
        mine = login(c, "pro-h01")
        theirs = login(c, "pro-h05")
        not_tokens = [
            "garbage",
            "x" * 42,
            "x" * 44,
            "x" * 42 + "+",
            "x" * 43 + "\n",
            "x" * 42 + "\x00",
            "é" * 43,
            "' OR 1=1 --",
            mine["access_token"],  # an access token is no refresh token
        ]
        for bad in not_tokens:
            refused(refresh(c, bad), "invalid_grant", "this is not a refresh token")
            h.api.services.limiter = LoginLimiter()
        refused(refresh(c, "A" * 43), "invalid_grant", "unknown refresh token")
        refused(refresh(c, ""), "invalid_request", "needs refresh_token")
        refused(c.post(TOKEN, data={"grant_type": "refresh_token"}), "invalid_request", "needs")
        assert refresh(c, "x" * 5000).status_code == 422  # longer than any form field taken
        # a refresh token is not a bearer token
        assert me(c, mine["refresh_token"]).status_code == 401
        # the refresh token decides whose tokens come back, not who else is logged in
        r = c.post(
            TOKEN,
            data={
                "grant_type": "refresh_token",
                "refresh_token": theirs["refresh_token"],
                "username": "op",
                "password": PASSWORD,
            },
            headers={"Authorization": f"Bearer {mine['access_token']}"},
        )
        assert r.status_code == 200
        assert me(c, r.json()["access_token"]).json()["customer"] == "h05"
        # a client has no refresh token (it logs in again with its secret)
        svc = h.api.services
        secret = svc.identities.create(
            "ems", "service_provider", kind="client", now=svc.clock.now()
        )
        r = c.post(
            TOKEN,
            data={"grant_type": "client_credentials", "client_id": "ems", "client_secret": secret},
        )
        assert r.status_code == 200 and "refresh_token" not in r.json()


def test_failed_refreshes_are_limited_per_address_and_do_not_slow_logins_elsewhere(
    h: Harness,
) -> None:
    with httpx.Client(base_url=h.url) as c:
        good = login(c, "op")["refresh_token"]
        codes = [refresh(c, "B" * 43).status_code for _ in range(6)]
        assert codes == [400] * 5 + [429]
        r = refresh(c, good)  # from the guessing address, even a good one waits
        refused(r, "invalid_request", "too many failed refreshes from 127.0.0.1")
        assert int(r.headers["retry-after"]) > 0
        # the guesses count for the address, not for a name: op may still log in here
        assert login(c, "op")["refresh_token"]
        limiter = h.api.services.limiter
        assert limiter.retry_after("refresh from 10.0.0.9", "10.0.0.9") == 0


def test_the_stream_closes_with_4401_when_its_token_expires_and_a_refreshed_one_reconnects(
    h: Harness,
) -> None:
    from websockets.sync.client import connect

    ws_url = h.url.replace("http", "ws") + "/api/v1/stream?token="
    with httpx.Client(base_url=h.url) as c:
        tokens = login(c, "op")
        with connect(ws_url + tokens["access_token"]) as ws:
            assert ws.recv(timeout=5)
            later(h, 60)
            assert ws.recv(timeout=5)  # still open
            r = refresh(c, tokens["refresh_token"])
            assert r.status_code == 200, r.text
            tokens = r.json()
            later(h, 900 - 60)  # the first access token's time is up
            t0 = time.monotonic()
            closed = closes_within(ws, 10)
            assert closed.rcvd is not None and closed.rcvd.code == 4401, closed
            assert time.monotonic() - t0 < 3  # seen within the second or so
        with connect(ws_url + tokens["access_token"]) as ws:
            assert ws.recv(timeout=5)
            later(h, 50)  # the refreshed token, issued 840 s ago, has 10 s left
            assert ws.recv(timeout=5)


def test_a_refresh_token_raced_from_many_places_at_once_is_spent_once(h: Harness) -> None:
    from concurrent.futures import ThreadPoolExecutor

    with httpx.Client(base_url=h.url) as c:
        token = login(c, "op")["refresh_token"]

    def attempt(_: int) -> httpx.Response:
        with httpx.Client(base_url=h.url, timeout=30) as own:
            return refresh(own, token)

    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(attempt, range(8)))
    codes = sorted(r.status_code for r in answers)
    # one is spent, the others are copies (or, past five failures, made to wait)
    assert codes[0] == 200 and set(codes[1:]) <= {400, 429}, [r.text for r in answers]
    assert codes[1] == 400
    winner = next(r for r in answers if r.status_code == 200).json()["refresh_token"]
    h.api.services.limiter = LoginLimiter()
    with httpx.Client(base_url=h.url) as c:  # the copies' use revoked the winner's session too
        refused(refresh(c, winner), "invalid_grant", "the session has ended")
