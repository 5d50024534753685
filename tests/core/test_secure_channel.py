"""The subscription's channel: X25519 + HKDF-SHA256 key agreement bound to both certificates
and the subscription, and AES-256-GCM messages refused when tampered, replayed, stale or
sent the wrong way."""

import hashlib
import struct

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from openmeg.core.secure_channel import Channel, ChannelError, agree_key, new_agreement_key
from openmeg.core.secure_memory import SecretBytes

PREMISES = hashlib.sha256(b"premises certificate").hexdigest()
PROVIDER = hashlib.sha256(b"provider certificate").hexdigest()
T0 = 1_764_633_600.0  # 2025-12-02 00:00:00 UTC, seconds


class FakeClock:
    def __init__(self, t: float = T0) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


def _keys(subscription: str = "sub-1") -> tuple[SecretBytes, SecretBytes]:
    premises, premises_public = new_agreement_key()
    provider, provider_public = new_agreement_key()
    names = {"premises_fingerprint": PREMISES, "provider_fingerprint": PROVIDER}
    mine = agree_key(premises, provider_public, subscription=subscription, **names)
    theirs = agree_key(provider, premises_public, subscription=subscription, **names)
    return mine, theirs


def _pair(clock: FakeClock | None = None) -> tuple[Channel, Channel]:
    clock = clock or FakeClock()
    mine, theirs = _keys()
    premises = Channel(mine, sender="premises", receiver="provider", clock=clock)
    provider = Channel(theirs, sender="provider", receiver="premises", clock=clock)
    return premises, provider


def test_both_sides_agree_one_key_bound_to_the_certificates_and_the_subscription() -> None:
    premises, premises_public = new_agreement_key()
    provider, provider_public = new_agreement_key()
    assert len(premises_public) == 32
    names = {"premises_fingerprint": PREMISES, "provider_fingerprint": PROVIDER}
    mine = agree_key(premises, provider_public, subscription="sub-1", **names)
    theirs = agree_key(provider, premises_public, subscription="sub-1", **names)
    assert len(mine) == 32 and mine.equals(theirs.view())
    # an independent derivation of the same key: HKDF-SHA256 over the shared secret
    from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PublicKey

    shared = premises.exchange(X25519PublicKey.from_public_bytes(provider_public))
    info = b"openmeg provisioning message key/1\x00" + f"{PREMISES}\x00{PROVIDER}\x00sub-1".encode()
    salt = b"".join(sorted([premises_public, provider_public]))
    expected = HKDF(algorithm=hashes.SHA256(), length=32, salt=salt, info=info).derive(shared)
    assert mine.equals(expected)
    other_subscription = agree_key(premises, provider_public, subscription="sub-2", **names)
    swapped = agree_key(
        premises,
        provider_public,
        subscription="sub-1",
        premises_fingerprint=PROVIDER,
        provider_fingerprint=PREMISES,
    )
    assert not other_subscription.equals(expected) and not swapped.equals(expected)
    for key in (mine, theirs, other_subscription, swapped):
        key.wipe()


@pytest.mark.parametrize(
    ("public", "names", "message"),
    [
        (b"\x01" * 31, {}, "32 raw bytes"),
        (bytes(32), {}, "not usable"),  # a low-order point: an all-zero shared secret
        (None, {"premises_fingerprint": "AB" * 32}, "64 lower-case hex digits"),
        (None, {"provider_fingerprint": "ab" * 31}, "64 lower-case hex digits"),
        (None, {"subscription": ""}, "subscription has 1 to 128"),
        (None, {"subscription": "a\nb"}, "subscription has 1 to 128"),
    ],
)
def test_a_malformed_agreement_is_refused(
    public: bytes | None, names: dict[str, str], message: str
) -> None:
    private, _ = new_agreement_key()
    peer = public if public is not None else new_agreement_key()[1]
    given = {"premises_fingerprint": PREMISES, "provider_fingerprint": PROVIDER} | names
    with pytest.raises(ChannelError, match=message) as err:
        agree_key(private, peer, subscription=given.pop("subscription", "sub-1"), **given)
    assert err.value.reason == "malformed"


def test_a_round_trip_each_way_in_the_documented_layout() -> None:
    clock = FakeClock(T0 + 0.25)
    premises, provider = _pair(clock)
    first, second = premises.seal(b"device list"), premises.seal(b"")
    assert len(first) == 29 + len(b"device list") + 16 and len(second) == 29 + 16
    assert struct.unpack(">BQQ", first[:17]) == (1, 1, 1_764_633_600_250)
    assert struct.unpack(">BQQ", second[:17]) == (1, 2, 1_764_633_600_250)
    assert first[17:29] != second[17:29]  # a fresh nonce each time
    assert provider.open(first) == b"device list" and provider.open(second) == b""
    answer = provider.seal(b"pre-cool ahu-1 to 21.5")
    assert premises.open(answer) == b"pre-cool ahu-1 to 21.5"
    big = bytes(range(256)) * 4096  # 1 MiB, the largest payload
    assert provider.open(premises.seal(big)) == big


def test_a_replayed_message_is_refused_and_changes_nothing() -> None:
    premises, provider = _pair()
    one, two = premises.seal(b"1"), premises.seal(b"2")
    assert provider.open(two) == b"2"
    for again in (two, one):  # the same again, or an older one after a newer
        with pytest.raises(ChannelError, match="not above the last accepted \\(2\\)") as err:
            provider.open(again)
        assert err.value.reason == "replayed"
    assert provider.open(premises.seal(b"3")) == b"3"


def test_a_message_outside_the_window_is_stale_either_way() -> None:
    clock = FakeClock()
    premises, provider = _pair(clock)
    late, edge = premises.seal(b"late"), premises.seal(b"edge")
    clock.t = T0 + 30.5
    with pytest.raises(ChannelError, match=r"30\.500 s away from now, outside the 30 s") as err:
        provider.open(late)
    assert err.value.reason == "stale"
    clock.t = T0 + 30.0  # exactly the window: still accepted
    assert provider.open(edge) == b"edge"
    clock.t = T0 + 61.0
    ahead = premises.seal(b"ahead")  # the sender's clock 30.5 s ahead of the receiver's
    clock.t = T0 + 30.5
    with pytest.raises(ChannelError, match=r"30\.500 s away") as err:
        provider.open(ahead)
    assert err.value.reason == "stale"
    clock.t = T0 + 31.0
    assert provider.open(ahead) == b"ahead"  # the refusals advanced nothing


def test_one_byte_changed_anywhere_is_refused() -> None:
    premises, provider = _pair()
    message = premises.seal(b"set lighting-2 level 40")
    for i in range(len(message)):
        for flip in (0x01, 0x80):
            changed = bytearray(message)
            changed[i] ^= flip
            with pytest.raises(ChannelError) as err:
                provider.open(bytes(changed))
            assert err.value.reason == ("malformed" if i == 0 else "tampered"), i
    for cut in (message[:-1], message[:44], message + b"\x00", b""):
        with pytest.raises(ChannelError) as err:
            provider.open(cut)
        assert err.value.reason in {"malformed", "tampered"}
    assert provider.open(message) == b"set lighting-2 level 40"


def test_the_wrong_direction_or_key_is_refused() -> None:
    premises, provider = _pair()
    with pytest.raises(ChannelError, match="not from the peer") as err:
        premises.open(premises.seal(b"reflected"))  # sent back to its sender
    assert err.value.reason == "tampered"
    stranger, _ = _pair()
    with pytest.raises(ChannelError) as err:
        provider.open(stranger.seal(b"another subscription"))
    assert err.value.reason == "tampered"
    mine, _ = _keys()
    # the direction keys come from the message key: AES-GCM under it directly fails too
    raw = AESGCM(bytes(mine.view()))
    header = struct.pack(">BQQ12s", 1, 1, int(T0 * 1000), bytes(12))
    forged = header + raw.encrypt(bytes(12), b"forged", header)
    with pytest.raises(ChannelError) as err:
        Channel(mine, sender="provider", receiver="premises", clock=FakeClock()).open(forged)
    assert err.value.reason == "tampered"
    assert provider.open(premises.seal(b"still fine")) == b"still fine"


def test_a_closed_channel_has_wiped_its_key_and_refuses_everything() -> None:
    mine, theirs = _keys()
    premises = Channel(mine, sender="premises", receiver="provider")
    provider = Channel(theirs, sender="provider", receiver="premises")
    message = premises.seal(b"before close")
    provider.close()
    assert provider.closed and theirs.wiped
    with pytest.raises(ChannelError, match="closed") as err:
        provider.open(message)
    assert err.value.reason == "closed"
    with pytest.raises(ChannelError, match="closed") as err:
        provider.seal(b"x")
    assert err.value.reason == "closed"
    with pytest.raises(ChannelError, match="live 32-byte SecretBytes"):
        Channel(theirs, sender="provider", receiver="premises")
    premises.close()


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"sender": "premises", "receiver": "premises"}, "two parties"),
        ({"sender": "", "receiver": "provider"}, "sender has 1 to 128"),
        ({"sender": "premises", "receiver": "provider", "window_s": float("nan")}, "window"),
        ({"sender": "premises", "receiver": "provider", "window_s": 0}, "window"),
    ],
)
def test_a_malformed_channel_is_refused(kwargs: dict[str, object], message: str) -> None:
    with SecretBytes(bytes(range(32))) as key, pytest.raises(ChannelError, match=message):
        Channel(key, **kwargs)  # type: ignore[arg-type]


def test_hostile_input_gets_a_clear_refusal() -> None:
    clock = FakeClock()
    premises, provider = _pair(clock)
    for bad in ("text", None, 42):
        with pytest.raises(ChannelError, match="is bytes") as err:
            provider.open(bad)  # type: ignore[arg-type]
        assert err.value.reason == "malformed"
        with pytest.raises(ChannelError, match="is bytes"):
            premises.seal(bad)  # type: ignore[arg-type]
    with pytest.raises(ChannelError, match="at most 1048576 bytes"):
        premises.seal(bytes((1 << 20) + 1))
    clock.t = float("nan")
    with pytest.raises(ChannelError, match="clock reads nan") as err:
        premises.seal(b"x")
    assert err.value.reason == "stale"
    clock.t = T0
    assert provider.open(premises.seal(b"ok")) == b"ok"  # the refused seal used no number


def test_an_agreement_needs_an_x25519_private_key() -> None:
    with pytest.raises(ChannelError, match="X25519 private key") as err:
        agree_key(
            b"\x01" * 32,  # type: ignore[arg-type]
            new_agreement_key()[1],
            premises_fingerprint=PREMISES,
            provider_fingerprint=PROVIDER,
            subscription="sub-1",
        )
    assert err.value.reason == "malformed"
