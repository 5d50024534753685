"""The negative matrix at the provisioning level: each case is refused, audited, changes nothing,
and the provisioning system keeps serving the subscription afterwards."""

from __future__ import annotations

import asyncio
import base64
import json
import ssl
import time
import warnings
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from openmeg.core.secure_memory import SecretBytes
from openmeg.customer.provisioning import Subscription
from openmeg.protocols.mtls import client_context
from openmeg.protocols.provider_ca import ProviderAuthority
from openmeg.provider.advert_http import HttpError, MtlsClient
from tests.customer.provisioning_world import World, offer, world
from tests.customer.test_provisioning import FakeBas, discover_with
from tests.keys import test_keystore

AHU_SETPOINT = "ahu-1.space_temp_setpoint_c"


class Skew:
    """The provider's clock, set off by ``offset_s``."""

    def __init__(self) -> None:
        self.offset_s = 0.0

    def __call__(self) -> float:
        return time.time() + self.offset_s


@asynccontextmanager
async def subscribed(
    tmp_path: Path, skew: Skew | None = None
) -> AsyncIterator[tuple[World, Subscription, FakeBas]]:
    bas = FakeBas()
    async with world(tmp_path, bas, discover_with(bas), provider_clock=skew or time.time) as w:
        ad = await w.provider.register(w.advertiser_at, offer(w.provider.endpoint))
        sub = await w.service.provisioning.subscribe(ad)
        yield w, sub, bas


def _msg(
    sub: Subscription, action: str = "setpoint", value: object = 21.5, device: str = ""
) -> dict:  # type: ignore[type-arg]
    ahu = next(d for d in sub.devices.values() if d.kind == "ahu")
    return {"id": "m1", "device": device or ahu.id, "action": action, "value": value}


async def _post(w: World, sub: Subscription, ctx: ssl.SSLContext) -> None:
    """One management message over a TLS connection made with ``ctx``."""
    endpoint = w.service.endpoint.endpoint.rpartition(":")
    client = MtlsClient(endpoint[0], int(endpoint[2]), ctx)
    try:
        await client.request("POST", "/messages", {"subscription": sub.id, "sealed": "AA=="})
    finally:
        await client.close()


def _pems(authority: ProviderAuthority, name: str, **kw: object) -> ssl.SSLContext:
    cert, key = authority.issue(name, client=True, **kw)  # type: ignore[arg-type]
    return client_context(
        cert, SecretBytes(bytearray(key)), authority.cert_pem, authority.crl_pem()
    )


async def _tls_refused(w: World, sub: Subscription, bas: FakeBas, ctx: ssl.SSLContext) -> str:
    """Post with ``ctx``: refused at the handshake, audited; the subscription still works."""
    before = len(w.reasons("provisioning.refused"))
    with pytest.raises(HttpError):
        await _post(w, sub, ctx)
    await _drain(w, before)
    reasons = w.reasons("provisioning.refused")[before:]
    assert len(reasons) == 1, reasons
    assert reasons[0].startswith("TLS handshake refused")
    assert bas.writes == []
    answer = await w.provider.send(sub.id, _msg(sub, value=22.0))  # still serving
    assert answer["ok"] is True
    bas.writes.clear()
    return reasons[0]


async def _drain(w: World, before: int) -> None:
    """Wait (up to 5 s) until the server has stored the refusal it records after a handshake."""
    for _ in range(250):
        if len(w.reasons("provisioning.refused")) > before:
            return
        await asyncio.sleep(0.02)


async def test_handshakes_without_a_valid_current_certificate_are_refused(tmp_path: Path) -> None:
    async with subscribed(tmp_path) as (w, sub, bas):
        ca = w.authority
        bare = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        bare.minimum_version = ssl.TLSVersion.TLSv1_3
        bare.load_verify_locations(cadata=ca.cert_pem.decode())
        why = await _tls_refused(w, sub, bas, bare)  # no client certificate
        assert "certificate" in why

        other = ProviderAuthority.create(
            "elsewhere", test_keystore(tmp_path / "o.ks"), tmp_path / "o"
        )
        cert, key = other.issue("comfort-optimiser", client=True)
        foreign = client_context(cert, SecretBytes(bytearray(key)), ca.cert_pem, ca.crl_pem())
        assert "certificate verify failed" in await _tls_refused(w, sub, bas, foreign)

        old = _pems(ca, "comfort-optimiser", not_after=datetime.now(UTC) - timedelta(days=1))
        assert "expired" in await _tls_refused(w, sub, bas, old)

        cert, key = ca.issue("comfort-optimiser", client=True)
        ca.revoke(cert)
        revoked = client_context(cert, SecretBytes(bytearray(key)), ca.cert_pem, ca.crl_pem())
        assert "revoked" in await _tls_refused(w, sub, bas, revoked)


async def test_old_protocols_and_weak_ciphers_are_refused(tmp_path: Path) -> None:
    async with subscribed(tmp_path) as (w, sub, bas):
        ca = w.authority
        cert, key = ca.issue("comfort-optimiser", client=True)
        for version, ciphers in (
            (ssl.TLSVersion.TLSv1_1, "ALL:@SECLEVEL=0"),
            (ssl.TLSVersion.TLSv1_2, "AES128-SHA"),
        ):
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
            ctx.set_ciphers(ciphers)
            with warnings.catch_warnings():  # TLS 1.1 is deprecated: that is the point
                warnings.simplefilter("ignore", DeprecationWarning)
                ctx.minimum_version = ctx.maximum_version = version
            ctx.load_cert_chain(*_files(tmp_path, cert, key))
            why = await _tls_refused(w, sub, bas, ctx)
            assert "protocol" in why.lower() or "version" in why.lower(), why


def _files(folder: Path, cert: bytes, key: bytes) -> tuple[str, str]:
    (folder / "c.pem").write_bytes(cert)
    (folder / "k.pem").write_bytes(key)
    return str(folder / "c.pem"), str(folder / "k.pem")


async def test_replayed_stale_and_altered_messages_are_refused(tmp_path: Path) -> None:
    skew = Skew()
    async with subscribed(tmp_path, skew) as (w, sub, bas):
        channel = w.provider.subscribers[sub.id].channel
        sealed = channel.seal(json.dumps(_msg(sub)).encode())
        assert (await w.provider.send_sealed(sub.id, sealed))["ok"] is True
        assert bas.writes == [("bas-office", AHU_SETPOINT, 21.5)]
        with pytest.raises(HttpError, match="replayed"):
            await w.provider.send_sealed(sub.id, sealed)

        skew.offset_s = -60.0
        with pytest.raises(HttpError, match="stale"):
            await w.provider.send(sub.id, _msg(sub, value=20.0))
        skew.offset_s = 0.0

        fresh = channel.seal(json.dumps(_msg(sub, value=19.0)).encode())
        for i in range(len(fresh)):
            bent = bytearray(fresh)
            bent[i] ^= 0x01
            with pytest.raises(HttpError, match=r"tampered|malformed"):
                await w.provider.send_sealed(sub.id, bytes(bent))
        assert bas.writes == [("bas-office", AHU_SETPOINT, 21.5)]  # nothing else changed
        reasons = w.reasons("provisioning.refused")
        assert reasons[:2] == ["replayed", "stale"]
        assert len(reasons) == 2 + len(fresh)
        assert set(reasons[2:]) == {"tampered", "malformed"}  # malformed: the version byte
        assert (await w.provider.send_sealed(sub.id, fresh))["ok"] is True  # the genuine one


async def test_a_batch_is_answered_message_by_message_and_a_replay_inside_it_refused(
    tmp_path: Path,
) -> None:
    async with subscribed(tmp_path) as (w, sub, bas):
        channel = w.provider.subscribers[sub.id].channel
        first, second = (channel.seal(json.dumps(_msg(sub, value=v)).encode()) for v in (20, 21))
        client = w.provider._client(w.provider.subscribers[sub.id])
        sealed = [base64.b64encode(m).decode() for m in (first, first, second)]
        status, body = await client.request(
            "POST", "/messages", {"subscription": sub.id, "sealed": sealed}
        )
        assert status == 200 and body["answers"][1] == {"refused": "replayed"}
        answers = [
            json.loads(channel.open(base64.b64decode(body["answers"][i]["sealed"]))) for i in (0, 2)
        ]
        assert [a["ok"] for a in answers] == [True, True]
        assert bas.writes == [
            ("bas-office", AHU_SETPOINT, 20.0),
            ("bas-office", AHU_SETPOINT, 21.0),
        ]
        assert w.reasons("provisioning.refused") == ["replayed"]
        assert [a[1] for a in w.actions()].count("provisioning.relayed") == 2
        for bad in ([], ["x"] * 65, [1]):
            status, body = await client.request(
                "POST", "/messages", {"subscription": sub.id, "sealed": bad}
            )
            assert status == 400 and "a list of 1 to 64" in str(body), body
        assert bas.writes[2:] == []


async def test_devices_and_actions_the_subscription_does_not_allow_are_refused(
    tmp_path: Path,
) -> None:
    async with subscribed(tmp_path) as (w, sub, bas):
        from openmeg.customer.device_discovery import device_uuid

        security = device_uuid(serial="HB-SC-0001")
        light = next(d.id for d in sub.devices.values() if d.kind == "lighting_zone")
        cases = [
            (_msg(sub, action="read", device=security), "not one this subscription"),
            (_msg(sub, action="fan_speed", value=100.0), "does not allow 'fan_speed'"),
            (_msg(sub, action="scene", value="full", device=light), "does not allow 'scene'"),
            (_msg(sub, value=99.0), "in 16..28"),
            (_msg(sub, value=float("nan")), "in 16..28"),
            ({"id": "x", "device": security, "action": "read", "extra": 1}, "not a management"),
        ]
        for msg, why in cases:
            answer = await w.provider.send(sub.id, msg)
            assert answer["ok"] is False and why in answer["refused"], (msg, answer)
        assert bas.writes == []
        assert w.reasons("provisioning.refused") == ["not allowed"] * len(cases)

        # another certificate of the same CA is not the subscription's provider
        other = _pems(w.authority, "someone-else")
        endpoint = w.service.endpoint.endpoint.rpartition(":")
        client = MtlsClient(endpoint[0], int(endpoint[2]), other)
        try:
            status, body = await client.request(
                "POST", "/messages", {"subscription": sub.id, "sealed": "AAAA"}
            )
        finally:
            await client.close()
        assert status == 403 and "not the subscription's provider" in body["error"]
        assert w.reasons("provisioning.refused")[-1] == (
            "this certificate is not the subscription's provider"
        )
