"""Sessions that last: refresh tokens, rotated on every use, kept only as SHA-256 hashes.

A login with a password starts a *session* (a family of refresh tokens). Each refresh spends
the token presented and hands out its successor; a token spent once and presented again means
that somebody holds a copy, so the whole family is revoked (OAuth 2.0 Security BCP, RFC 9700
§4.14.2). A token lives ``idle_s`` from its issue (a display left alone for longer logs in
again), and no session outlives ``cap_s`` from its login, however often it is refreshed.
Logging out, or a new password, revokes the session(s).

The tokens are 256 random bits; the store holds their SHA-256, never the token, so a copy of
the store gives nobody a session (a hash of 256 random bits needs no salt nor slow hash).
"""

from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa

from openmeg.core.errors import OpenMegError
from openmeg.core.store import Store, as_utc, metadata

IDLE_S = 12 * 3600.0
"""A refresh token not used for this long expires (the idle lifetime)."""
CAP_S = 7 * 86400.0
"""No session lasts longer than this from its login (the absolute lifetime)."""
TOKEN_BYTES = 32
SHAPE = re.compile(r"[A-Za-z0-9_-]{43}")
"""What a refresh token looks like (32 bytes, URL-safe base64 without padding)."""

refresh_tokens = sa.Table(
    "refresh_tokens",
    metadata,
    sa.Column("token_sha256", sa.String(64), primary_key=True),
    sa.Column("family", sa.String(32), nullable=False, index=True),
    sa.Column("principal", sa.String(128), nullable=False, index=True),
    sa.Column("issued_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("session_started_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("spent_at", sa.DateTime(timezone=True), nullable=True),
    sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
    sa.Column("revoked_why", sa.String(64), nullable=True),
)


class RefreshRefused(OpenMegError):
    """A refresh token that gives no new tokens, with why (for the OAuth2 ``invalid_grant``)."""


class RefreshReused(RefreshRefused):
    """A spent refresh token presented again: its session has been revoked."""

    def __init__(self, message: str, *, principal: str, family: str) -> None:
        super().__init__(message)
        self.principal, self.family = principal, family


@dataclass(frozen=True, kw_only=True)
class Rotated:
    """A refresh done: whose session, the new refresh token and when it expires."""

    principal: str
    family: str
    refresh_token: str
    expires_at: datetime


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class Sessions:
    """Refresh-token families in the store."""

    def __init__(self, store: Store, *, idle_s: float = IDLE_S, cap_s: float = CAP_S) -> None:
        if not 0 < idle_s <= cap_s:
            raise ValueError(f"idle lifetime {idle_s} s must be positive and at most the cap")
        self.store, self.idle_s, self.cap_s = store, idle_s, cap_s
        refresh_tokens.create(store.engine, checkfirst=True)

    def _expiry(self, started: datetime, now: datetime) -> datetime:
        return min(now + timedelta(seconds=self.idle_s), started + timedelta(seconds=self.cap_s))

    def start(self, principal: str, now: datetime) -> Rotated:
        """A new session for ``principal`` (at login): its first refresh token."""
        now = as_utc(now)
        family = secrets.token_hex(16)
        token = secrets.token_urlsafe(TOKEN_BYTES)
        expires = self._expiry(now, now)
        with self.store.engine.begin() as conn:
            # sessions over for a day are forgotten: the table holds the live ones
            conn.execute(
                refresh_tokens.delete().where(
                    refresh_tokens.c.session_started_at
                    < now - timedelta(seconds=self.cap_s + 86400.0)
                )
            )
            conn.execute(
                refresh_tokens.insert(),
                {
                    "token_sha256": token_hash(token),
                    "family": family,
                    "principal": principal,
                    "issued_at": now,
                    "expires_at": expires,
                    "session_started_at": now,
                },
            )
        return Rotated(principal=principal, family=family, refresh_token=token, expires_at=expires)

    def rotate(self, token: str, now: datetime) -> Rotated:
        """Spend ``token`` for its successor; ``RefreshRefused`` says why not, and
        ``RefreshReused`` that it was spent already (its session is then revoked)."""
        if not SHAPE.fullmatch(token):
            raise RefreshRefused("this is not a refresh token: log in again")
        now = as_utc(now)
        h = token_hash(token)
        t = refresh_tokens.c
        with self.store.engine.begin() as conn:
            row = conn.execute(sa.select(refresh_tokens).where(t.token_sha256 == h)).first()
            if row is None:
                raise RefreshRefused("unknown refresh token: log in again")
            if row.revoked_at is not None:
                raise RefreshRefused(f"the session has ended ({row.revoked_why}): log in again")
            if row.spent_at is None and as_utc(row.expires_at) <= now:
                raise RefreshRefused("the refresh token has expired: log in again")
            spent = (
                conn.execute(
                    refresh_tokens.update()
                    .where(t.token_sha256 == h, t.spent_at.is_(None))
                    .values(spent_at=now)
                ).rowcount
                if row.spent_at is None
                else 0
            )
            if spent:
                started = as_utc(row.session_started_at)
                fresh = secrets.token_urlsafe(TOKEN_BYTES)
                expires = self._expiry(started, now)
                conn.execute(
                    refresh_tokens.insert(),
                    {
                        "token_sha256": token_hash(fresh),
                        "family": row.family,
                        "principal": row.principal,
                        "issued_at": now,
                        "expires_at": expires,
                        "session_started_at": started,
                    },
                )
                return Rotated(
                    principal=row.principal,
                    family=row.family,
                    refresh_token=fresh,
                    expires_at=expires,
                )
        # spent before (or by a concurrent request a moment ago): somebody holds a copy
        self._revoke(t.family == row.family, now, "refresh token reused")
        raise RefreshReused(
            "this refresh token was used already: the session is revoked, log in again",
            principal=row.principal,
            family=row.family,
        )

    def end(self, token: str, now: datetime) -> str | None:
        """Log out: revoke the session ``token`` belongs to; whose it was (``None``: no
        session of that token, or ended already)."""
        if not SHAPE.fullmatch(token):
            return None
        t = refresh_tokens.c
        with self.store.engine.connect() as conn:
            row = conn.execute(
                sa.select(t.family, t.principal).where(t.token_sha256 == token_hash(token))
            ).first()
        if row is None or not self._revoke(t.family == row.family, as_utc(now), "logged out"):
            return None
        return str(row.principal)

    def end_all(self, principal: str, now: datetime, why: str) -> int:
        """Revoke every session of ``principal`` (a new password, a user removed); how many
        refresh tokens were still live."""
        return self._revoke(refresh_tokens.c.principal == principal, as_utc(now), why)

    def _revoke(self, which: sa.ColumnElement[bool], now: datetime, why: str) -> int:
        t = refresh_tokens.c
        with self.store.engine.begin() as conn:
            done = conn.execute(
                refresh_tokens.update()
                .where(which, t.revoked_at.is_(None))
                .values(revoked_at=now, revoked_why=why[:64])
            ).rowcount
        return int(done)
