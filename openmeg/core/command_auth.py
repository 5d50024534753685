"""Signed authorisations of operators' commands and device adds (HS256 JSON Web Tokens).

A command that arrives from outside the platform (on the bus, from an HMI or the command line)
carries a token signed with the token signing key: audience ``openmeg-command``, the site as
issuer, the operator as ``sub`` with their ``role``, a short expiry, a ``jti`` used once, and
claims that bind it to one command (``device``, ``point``, ``value``) or to the address of one
device add (``address``). The runtime verifies it; the actor in the audit log is its ``sub``.
Tokens run on real time (``exp`` against a wall clock), never on a simulated clock.
"""

from __future__ import annotations

import heapq
import math
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import jwt

from openmeg.core.errors import OpenMegError
from openmeg.core.identity import Principal

COMMAND_AUDIENCE = "openmeg-command"
COMMAND_TTL_S = 60.0
"""How long a signed authorisation stays valid by default [s]."""
MAX_TTL_S = 300.0
"""The longest lifetime a verifier accepts [s]: it bounds the memory of used ``jti``."""
UNVERIFIED = "unauthenticated"
"""The actor of a refused command that names nobody."""


class CommandAuthError(OpenMegError):
    """A command's authorisation is missing, forged, expired, replayed or for something else.

    ``claimed`` is the name the token gives, unverified (``""`` when there is none)."""

    def __init__(self, reason: str, *, claimed: str = "") -> None:
        super().__init__(reason)
        self.reason, self.claimed = reason, claimed

    @property
    def actor(self) -> str:
        """Who to write in the audit log: never a trusted name."""
        return f"{self.claimed} (unverified)" if self.claimed else UNVERIFIED


@dataclass(frozen=True, kw_only=True)
class Authorised:
    """A verified authorisation: who gave it and its ``jti``."""

    sub: str
    role: str
    jti: str


def _key(key: str | bytes) -> bytes:
    return key.encode() if isinstance(key, str) else key


def _same(a: object, b: float) -> bool:
    """Whether the claimed value ``a`` is the command's value ``b`` (NaN is NaN)."""
    if isinstance(a, bool) or not isinstance(a, int | float):
        return False
    return float(a) == b or (math.isnan(float(a)) and math.isnan(b))


def _sign(
    key: str | bytes,
    site: str,
    principal: Principal,
    binding: dict[str, Any],
    now: datetime,
    ttl_s: float,
) -> str:
    claims = {
        "aud": COMMAND_AUDIENCE,
        "iss": site,
        "sub": principal.name,
        "role": principal.role,
        "iat": int(now.timestamp()),
        "exp": int((now + timedelta(seconds=ttl_s)).timestamp()),
        "jti": secrets.token_hex(16),
        **binding,
    }
    return jwt.encode(claims, _key(key), algorithm="HS256")


def authorise_command(
    key: str | bytes,
    site: str,
    principal: Principal,
    device: str,
    point: str,
    value: float,
    now: datetime,
    *,
    ttl_s: float = COMMAND_TTL_S,
) -> str:
    """A signed authorisation for ``device/point = value`` given by ``principal`` at ``now``
    (real time), valid ``ttl_s`` seconds [s]."""
    binding = {"device": device, "point": point, "value": float(value)}
    return _sign(key, site, principal, binding, now, ttl_s)


def authorise_device_add(
    key: str | bytes,
    site: str,
    principal: Principal,
    address: str,
    now: datetime,
    *,
    ttl_s: float = COMMAND_TTL_S,
) -> str:
    """A signed authorisation to add the device at ``address`` (``HOST:PORT:UNIT``)."""
    return _sign(key, site, principal, {"address": address}, now, ttl_s)


class CommandAuthority:
    """Verifies the authorisations of one site's commands, each usable once.

    ``key``: the token signing key; ``remember``: how many unexpired ``jti`` are kept (beyond
    that, new authorisations are refused until some expire: memory stays bounded);
    ``not_before``: authorisations issued earlier are refused (the runtime's start: a retained
    message cannot replay a command after a restart, when the used ``jti`` are forgotten)."""

    def __init__(
        self,
        key: str | bytes,
        *,
        site: str,
        remember: int = 10_000,
        not_before: datetime | None = None,
    ) -> None:
        self._key, self.site, self.remember = _key(key), site, remember
        self.not_before = int(not_before.timestamp()) if not_before is not None else None
        self._used: set[str] = set()
        self._expiries: list[tuple[float, str]] = []  # a heap of (exp, jti)

    def sign_command(
        self, who: Principal, device: str, point: str, value: float, now: datetime
    ) -> str:
        """An authorisation of ``device/point = value`` by ``who`` (an operator) at ``now``."""
        return authorise_command(self._key, self.site, who, device, point, value, now)

    def sign_device_add(self, who: Principal, address: str, now: datetime) -> str:
        """An authorisation by ``who`` to add the device at ``address``."""
        return authorise_device_add(self._key, self.site, who, address, now)

    def command(
        self, token: str, device: str, point: str, value: float, now: datetime
    ) -> Authorised:
        """The operator who authorised ``device/point = value``; ``CommandAuthError`` why not."""
        claims = self._claims(token, now)
        asked = {"device": device, "point": point}
        for name, want in asked.items():
            if claims.get(name) != want:
                raise self._wrong(claims, f"{name} {claims.get(name)!r}, not {want!r}")
        if not _same(claims.get("value"), value):
            raise self._wrong(claims, f"value {claims.get('value')!r}, not {value!r}")
        return self._use(claims, now)

    def device_add(self, token: str, address: str, now: datetime) -> Authorised:
        """The operator who authorised adding the device at ``address``."""
        claims = self._claims(token, now)
        if claims.get("address") != address:
            raise self._wrong(claims, f"address {claims.get('address')!r}, not {address!r}")
        return self._use(claims, now)

    def _wrong(self, claims: dict[str, Any], what: str) -> CommandAuthError:
        return CommandAuthError(
            f"the authorisation is for another command ({what}): ask for one for this command",
            claimed=str(claims.get("sub", "")),
        )

    def _claims(self, token: str, now: datetime) -> dict[str, Any]:
        if not token:
            raise CommandAuthError(
                "no authorisation: a command needs an operator's signed authorisation "
                "(POST /api/v1/commands/authorisations)"
            )
        claimed = _unverified_sub(token)
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                self._key,
                algorithms=["HS256"],
                audience=COMMAND_AUDIENCE,
                issuer=self.site,
                options={
                    "require": ["exp", "iat", "aud", "iss", "sub", "jti"],
                    "verify_exp": False,  # against ``now`` below: real time, injected
                    "verify_iat": False,
                },
            )
        except jwt.PyJWTError as err:
            raise CommandAuthError(
                f"the authorisation is not valid: {err}", claimed=claimed
            ) from err
        t = now.timestamp()
        exp, iat = claims["exp"], claims["iat"]
        if not isinstance(exp, int | float) or not isinstance(iat, int | float):
            raise CommandAuthError(
                "the authorisation's exp and iat must be numbers", claimed=claimed
            )
        if exp <= t:
            raise CommandAuthError(
                "the authorisation has expired: ask for a new one", claimed=claimed
            )
        if exp - iat > MAX_TTL_S or iat > t + 5.0:
            raise CommandAuthError(
                f"the authorisation lives longer than {MAX_TTL_S:g} s or is dated in the future: "
                "ask for a new one",
                claimed=claimed,
            )
        if self.not_before is not None and iat < self.not_before:
            raise CommandAuthError(
                "the authorisation was issued before this MEG started: ask for a new one",
                claimed=claimed,
            )
        if claims.get("role") != "operator":
            raise CommandAuthError(
                f"only an operator may command, not a {claims.get('role')!r}", claimed=claimed
            )
        return claims

    def _use(self, claims: dict[str, Any], now: datetime) -> Authorised:
        t = now.timestamp()
        while self._expiries and self._expiries[0][0] <= t:
            self._used.discard(heapq.heappop(self._expiries)[1])
        jti, sub = str(claims["jti"]), str(claims["sub"])
        if jti in self._used:
            raise CommandAuthError(
                "the authorisation was used already (a replay): ask for a new one", claimed=sub
            )
        if len(self._used) >= self.remember:
            raise CommandAuthError(
                "too many authorisations in use: try again in a minute", claimed=sub
            )
        self._used.add(jti)
        heapq.heappush(self._expiries, (float(claims["exp"]), jti))
        return Authorised(sub=sub, role=str(claims["role"]), jti=jti)


def _unverified_sub(token: str) -> str:
    """The name a token claims, unverified (for the audit log only, marked as such)."""
    try:
        sub = jwt.decode(token, options={"verify_signature": False}).get("sub", "")
    except jwt.PyJWTError:
        return ""
    return str(sub)[:64] if isinstance(sub, str) else ""
