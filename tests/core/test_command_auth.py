"""Signed authorisations of commands and device adds: the exact claims, and each way a token
is refused (expired, another key, another audience or site, a prosumer's, replayed, for
another command or address)."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

import jwt
import pytest

from openmeg.core.command_auth import (
    COMMAND_AUDIENCE,
    CommandAuthError,
    CommandAuthority,
    authorise_command,
    authorise_device_add,
)
from openmeg.core.identity import Principal

KEY = "k" * 64
NOW = datetime(2026, 6, 1, 12, 0, 0, tzinfo=UTC)
OP = Principal(name="operator-1", role="operator")
NO_EXP = {"verify_exp": False}


def _authority(**kw: object) -> CommandAuthority:
    return CommandAuthority(KEY, site="demo", **kw)  # type: ignore[arg-type]


def test_a_command_authorisation_carries_exactly_its_claims() -> None:
    token = authorise_command(KEY, "demo", OP, "pcc", "switch_command", 1.0, NOW)
    claims = jwt.decode(token, KEY, ["HS256"], audience=COMMAND_AUDIENCE, options=NO_EXP)
    jti = claims.pop("jti")
    assert len(jti) == 32 and int(jti, 16) >= 0
    assert claims == {
        "aud": "openmeg-command",
        "iss": "demo",
        "sub": "operator-1",
        "role": "operator",
        "iat": 1780315200,
        "exp": 1780315260,
        "device": "pcc",
        "point": "switch_command",
        "value": 1.0,
    }
    assert jwt.get_unverified_header(token)["alg"] == "HS256"
    who = _authority().command(token, "pcc", "switch_command", 1.0, NOW + timedelta(seconds=59))
    assert (who.sub, who.role, who.jti) == ("operator-1", "operator", jti)


def test_a_device_add_authorisation_is_bound_to_its_address() -> None:
    token = authorise_device_add(KEY, "demo", OP, "127.0.0.1:15099:1", NOW)
    claims = jwt.decode(token, KEY, ["HS256"], audience=COMMAND_AUDIENCE, options=NO_EXP)
    assert claims["address"] == "127.0.0.1:15099:1" and "device" not in claims
    with pytest.raises(CommandAuthError, match=r"another command .*address .127\.0\.0\.1:15099:1."):
        _authority().device_add(token, "127.0.0.1:5432:1", NOW)
    assert _authority().device_add(token, "127.0.0.1:15099:1", NOW).sub == "operator-1"
    with pytest.raises(CommandAuthError, match="another command"):  # a command's is no add's
        _authority().device_add(
            authorise_command(KEY, "demo", OP, "pcc", "switch_command", 1.0, NOW), "x:1:1", NOW
        )


def test_an_expired_authorisation_is_refused_at_its_expiry() -> None:
    token = authorise_command(KEY, "demo", OP, "pcc", "switch_command", 1.0, NOW, ttl_s=60)
    with pytest.raises(CommandAuthError, match="has expired") as err:
        _authority().command(token, "pcc", "switch_command", 1.0, NOW + timedelta(seconds=60))
    assert err.value.actor == "operator-1 (unverified)"


@pytest.mark.parametrize(
    ("token", "reason"),
    [
        ("", "no authorisation"),
        ("not-a-token", "not valid"),
        (
            authorise_command("guessed-" * 8, "demo", OP, "pcc", "switch_command", 1.0, NOW),
            "Signature",
        ),
        (authorise_command(KEY, "other-site", OP, "pcc", "switch_command", 1.0, NOW), "issuer"),
        (
            jwt.encode(
                {
                    "aud": "openmeg-api",
                    "iss": "demo",
                    "sub": "operator-1",
                    "role": "operator",
                    "iat": 1780315200,
                    "exp": 1780315260,
                    "jti": "a",
                    "device": "pcc",
                    "point": "switch_command",
                    "value": 1.0,
                },
                KEY,
                algorithm="HS256",
            ),
            "Audience doesn.t match",
        ),
        (
            authorise_command(
                KEY,
                "demo",
                Principal(name="pro-h01", role="prosumer", customer="h01"),
                "pcc",
                "switch_command",
                1.0,
                NOW,
            ),
            "only an operator may command, not a 'prosumer'",
        ),
        (
            authorise_command(KEY, "demo", OP, "pcc", "switch_command", 1.0, NOW, ttl_s=3600),
            "lives longer than 300 s",
        ),
        (jwt.encode({"sub": "x"}, None, algorithm="none"), "not valid"),
    ],
    ids=[
        "none",
        "garbage",
        "wrong-key",
        "wrong-site",
        "wrong-audience",
        "prosumer",
        "long",
        "alg-none",
    ],
)
def test_forged_or_wrong_authorisations_are_refused(token: str, reason: str) -> None:
    with pytest.raises(CommandAuthError, match=reason):
        _authority().command(token, "pcc", "switch_command", 1.0, NOW)


def test_an_authorisation_for_another_value_device_or_point_is_refused() -> None:
    token = authorise_command(KEY, "demo", OP, "pcc", "switch_command", 2.0, NOW)
    a = _authority()
    with pytest.raises(CommandAuthError, match=r"value 2.0, not 1.0"):
        a.command(token, "pcc", "switch_command", 1.0, NOW)
    with pytest.raises(CommandAuthError, match=r"device 'pcc', not 'sw-r5'"):
        a.command(token, "sw-r5", "switch_command", 2.0, NOW)
    with pytest.raises(CommandAuthError, match=r"point 'switch_command', not 'p_set_kw'"):
        a.command(token, "pcc", "p_set_kw", 2.0, NOW)
    assert a.command(token, "pcc", "switch_command", 2.0, NOW).sub == "operator-1"
    nan = authorise_command(KEY, "demo", OP, "bess-h01", "p_set_kw", math.nan, NOW)
    assert a.command(nan, "bess-h01", "p_set_kw", math.nan, NOW).sub == "operator-1"


def test_a_replayed_authorisation_is_refused_and_memory_stays_bounded() -> None:
    a = _authority(remember=3)
    token = authorise_command(KEY, "demo", OP, "pcc", "switch_command", 1.0, NOW)
    a.command(token, "pcc", "switch_command", 1.0, NOW)
    with pytest.raises(CommandAuthError, match="used already") as err:
        a.command(token, "pcc", "switch_command", 1.0, NOW + timedelta(seconds=1))
    assert err.value.actor == "operator-1 (unverified)"
    for _ in range(2):
        t = authorise_command(KEY, "demo", OP, "pcc", "switch_command", 1.0, NOW)
        a.command(t, "pcc", "switch_command", 1.0, NOW)
    full = authorise_command(KEY, "demo", OP, "pcc", "switch_command", 1.0, NOW)
    with pytest.raises(CommandAuthError, match="too many authorisations"):
        a.command(full, "pcc", "switch_command", 1.0, NOW)
    # once the first ones have expired, their jti are forgotten and new ones pass
    later = NOW + timedelta(seconds=61)
    fresh = authorise_command(KEY, "demo", OP, "pcc", "switch_command", 1.0, later)
    assert a.command(fresh, "pcc", "switch_command", 1.0, later).sub == "operator-1"
    assert len(a._used) == 1


def test_an_unsigned_name_is_never_the_actor() -> None:
    with pytest.raises(CommandAuthError) as err:
        _authority().command("", "pcc", "switch_command", 1.0, NOW)
    assert err.value.actor == "unauthenticated"


def test_an_authorisation_issued_before_the_runtime_started_is_refused() -> None:
    started = NOW + timedelta(seconds=10)
    a = CommandAuthority(KEY, site="demo", not_before=started)
    old = authorise_command(KEY, "demo", OP, "pcc", "switch_command", 1.0, NOW)
    with pytest.raises(CommandAuthError, match="issued before this MEG started"):
        a.command(old, "pcc", "switch_command", 1.0, started)
    new = authorise_command(KEY, "demo", OP, "pcc", "switch_command", 1.0, started)
    assert a.command(new, "pcc", "switch_command", 1.0, started).sub == "operator-1"
