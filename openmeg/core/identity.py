"""Identity and authorisation (Y.2071 clause 11): users with argon2id password hashes, API
clients with secrets, four roles, JSON Web Tokens with expiry and audience (the limit on
failed logins is the API's, ``openmeg.api.login_limit``). No default passwords: the first run
creates an operator ``admin`` with a generated password that is shown once."""

from __future__ import annotations

import logging
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

import jwt
import sqlalchemy as sa
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from openmeg.core.errors import OpenMegError
from openmeg.core.keystore import Keystore
from openmeg.core.store import Store, as_utc, metadata

Role = Literal["operator", "prosumer", "service_provider", "auditor"]
ROLES: tuple[Role, ...] = ("operator", "prosumer", "service_provider", "auditor")
AUDIENCE = "openmeg-api"
MIN_PASSWORD = 12

principals = sa.Table(
    "principals",
    metadata,
    sa.Column("name", sa.String(128), primary_key=True),
    sa.Column("kind", sa.String(16), nullable=False),  # user or client
    sa.Column("role", sa.String(32), nullable=False),
    sa.Column("customer", sa.String(64), nullable=True),
    sa.Column("secret_hash", sa.String(256), nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
)

SIGNING_KEY = "jwt/signing"  # the token signing key's name in the keystore
LEGACY_SIGNING_TABLE = "signing_keys"  # where an older openmeg kept it, in plain text
log = logging.getLogger("openmeg.identity")


class AuthError(OpenMegError):
    """Not authenticated (bad credentials, a token expired, forged or for someone else)."""


@dataclass(frozen=True, kw_only=True)
class Principal:
    """Who is asking: a user or an API client, with a role; a prosumer's customer id."""

    name: str
    role: Role
    customer: str | None = None


class Identities:
    """Users and API clients in the store."""

    def __init__(self, store: Store) -> None:
        self.store = store
        principals.create(store.engine, checkfirst=True)
        self._hasher = PasswordHasher()  # argon2id

    def create(
        self,
        name: str,
        role: str,
        *,
        customer: str | None = None,
        secret: str | None = None,
        kind: Literal["user", "client"] = "user",
        now: datetime,
    ) -> str:
        """Create a user or client; returns its password or secret (generated if not given)."""
        if role not in ROLES:
            raise ValueError(f"role {role!r}; accepted: {', '.join(ROLES)}")
        if role == "prosumer" and not customer:
            raise ValueError("a prosumer is somebody's: give their customer id")
        if not name or len(name) > 128 or not name.replace("-", "").replace("_", "").isalnum():
            raise ValueError("a name has 1 to 128 letters, digits, - or _")
        if secret is not None and len(secret) < MIN_PASSWORD:
            raise ValueError(f"a password has at least {MIN_PASSWORD} characters")
        secret = secret or secrets.token_urlsafe(18)
        row = {
            "name": name,
            "kind": kind,
            "role": role,
            "customer": customer,
            "secret_hash": self._hasher.hash(secret),
            "created_at": as_utc(now),
        }
        try:
            with self.store.engine.begin() as conn:
                conn.execute(principals.insert(), row)
        except sa.exc.IntegrityError as err:
            raise ValueError(f"{name!r} exists already") from err
        return secret

    def reset(self, name: str, secret: str | None = None) -> str:
        """A new password or secret for someone who has lost theirs (generated if not given)."""
        if secret is not None and len(secret) < MIN_PASSWORD:
            raise ValueError(f"a password has at least {MIN_PASSWORD} characters")
        secret = secret or secrets.token_urlsafe(18)
        with self.store.engine.begin() as conn:
            done = conn.execute(
                principals.update()
                .where(principals.c.name == name)
                .values(secret_hash=self._hasher.hash(secret))
            ).rowcount
        if not done:
            raise ValueError(f"no user or client {name!r}")
        return secret

    def ensure_admin(self, now: datetime) -> str | None:
        """On the first run, an operator ``admin`` with a generated password (returned once)."""
        with self.store.engine.connect() as conn:
            if conn.execute(sa.select(sa.func.count()).select_from(principals)).scalar_one():
                return None
        return self.create("admin", "operator", now=now)

    def authenticate(self, name: str, secret: str, *, kind: str = "user") -> Principal:
        with self.store.engine.connect() as conn:
            row = conn.execute(
                sa.select(principals).where(principals.c.name == name, principals.c.kind == kind)
            ).first()
        if row is None:
            self._hasher.hash(secret)  # the same work either way: no timing oracle
            raise AuthError("wrong name or password")
        try:
            self._hasher.verify(row.secret_hash, secret)
        except (VerificationError, InvalidHashError) as err:
            raise AuthError("wrong name or password") from err
        return Principal(name=row.name, role=row.role, customer=row.customer)

    def get(self, name: str) -> Principal | None:
        """The user or client ``name``, or ``None`` if there is none (any longer)."""
        with self.store.engine.connect() as conn:
            r = conn.execute(sa.select(principals).where(principals.c.name == name)).first()
        return None if r is None else Principal(name=r.name, role=r.role, customer=r.customer)

    def all(self) -> list[Principal]:
        with self.store.engine.connect() as conn:
            rows = conn.execute(sa.select(principals).order_by(principals.c.name)).all()
        return [Principal(name=r.name, role=r.role, customer=r.customer) for r in rows]

    def signing_key(self, keys: Keystore) -> bytes:
        """The key tokens are signed with: ``jwt/signing`` in the keystore, made on first use.

        A key an older openmeg kept in plain text in the store is retired, not moved: whoever
        could read the store may have it, so tokens signed with it stop working."""
        if sa.inspect(self.store.engine).has_table(LEGACY_SIGNING_TABLE):
            with self.store.engine.begin() as conn:
                conn.execute(sa.text(f"DROP TABLE IF EXISTS {LEGACY_SIGNING_TABLE}"))
            keys.put(SIGNING_KEY, secrets.token_bytes(32))
            log.warning(
                "warning: the token signing key kept in plain text in the store %s was retired and "
                "a new one sealed in the keystore %s: tokens issued before no longer work (log "
                "in again)",
                self.store.engine.url.render_as_string(hide_password=True),
                keys.path,
            )
        return keys.secret(SIGNING_KEY)


class Tokens:
    """HS256 JSON Web Tokens for the API, with an expiry and the API as audience."""

    def __init__(self, key: bytes, *, issuer: str, ttl_s: float = 900.0) -> None:
        self._key, self.issuer, self.ttl_s = key, issuer, ttl_s

    def issue(self, who: Principal, now: datetime) -> str:
        claims = {
            "sub": who.name,
            "role": who.role,
            "customer": who.customer,
            "aud": AUDIENCE,
            "iss": self.issuer,
            "iat": int(now.timestamp()),
            "exp": int((now + timedelta(seconds=self.ttl_s)).timestamp()),
            "jti": secrets.token_hex(8),
        }
        return jwt.encode(claims, self._key, algorithm="HS256")

    def verify(self, token: str, now: datetime | None = None) -> Principal:
        """The principal of a good token. With ``now`` (the platform's clock, which may be
        corrected by a time server), the expiry is checked against it, not the machine's."""
        timed = now is None
        try:
            claims = jwt.decode(
                token,
                self._key,
                algorithms=["HS256"],
                audience=AUDIENCE,
                issuer=self.issuer,
                options={
                    "require": ["exp", "aud", "iss", "sub"],
                    "verify_exp": timed,
                    "verify_iat": timed,
                    "verify_nbf": timed,
                },
                leeway=0,
            )
        except jwt.ExpiredSignatureError as err:
            raise AuthError("the token has expired: log in again") from err
        except jwt.PyJWTError as err:
            raise AuthError(f"the token is not valid: {err}") from err
        exp = claims["exp"]
        if not isinstance(exp, int | float) or isinstance(exp, bool):
            raise AuthError("the token is not valid: its expiry is not a number")
        if now is not None and exp <= now.timestamp():
            raise AuthError("the token has expired: log in again")
        role = claims.get("role")
        if role not in ROLES:
            raise AuthError("the token names no known role")
        return Principal(name=claims["sub"], role=role, customer=claims.get("customer"))
