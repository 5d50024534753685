"""The encrypted channel of a service subscription (Y.2071 III.3): a message key agreed with
X25519 and HKDF-SHA256 bound to both certificates' fingerprints and the subscription, and
messages sealed with AES-256-GCM under a key per direction, each carrying a sequence number
and its time against replay (docs/provisioning-security.md).

A message is ``version (1 byte) | seq (u64) | unix time ms (u64) | nonce (12 bytes) |
ciphertext and tag (16 bytes)``, big-endian, the 29-byte header authenticated as associated data."""

from __future__ import annotations

import math
import re
import secrets
import struct
import threading
import time
from collections.abc import Callable
from typing import Literal

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from openmeg.core.errors import OpenMegError
from openmeg.core.secure_memory import SecretBytes

__all__ = ["Channel", "ChannelError", "agree_key", "new_agreement_key"]

VERSION = 1
HEADER = struct.Struct(">BQQ12s")  # version, seq, time ms, nonce
TAG = 16
MAX_PAYLOAD = 1 << 20  # bytes
MAX_SEQ = 1 << 32  # messages per key and direction (random 96-bit nonces): then agree again
KEY_INFO = b"openmeg provisioning message key/1"
DIRECTION_INFO = b"openmeg provisioning direction key/1"
Reason = Literal["malformed", "tampered", "replayed", "stale", "closed"]
_FINGERPRINT = re.compile(r"[0-9a-f]{64}")
_LABEL = re.compile(r"[A-Za-z0-9._:/@-]{1,128}")


class ChannelError(OpenMegError):
    """A message refused (``reason``: malformed, tampered, replayed, stale or closed)."""

    def __init__(self, reason: Reason, message: str) -> None:
        super().__init__(message)
        self.reason: Reason = reason


def new_agreement_key() -> tuple[X25519PrivateKey, bytes]:
    """A fresh X25519 private key and its raw public key (32 bytes) to send the peer."""
    private = X25519PrivateKey.generate()
    public = private.public_key().public_bytes(
        serialization.Encoding.Raw, serialization.PublicFormat.Raw
    )
    return private, public


def _label(kind: str, value: object) -> bytes:
    if not isinstance(value, str) or not _LABEL.fullmatch(value):
        raise ChannelError(
            "malformed", f"{kind} has 1 to 128 of A-Z a-z 0-9 . _ : / @ -, not {value!r}"
        )
    return value.encode()


def _fingerprint(kind: str, value: object) -> bytes:
    if not isinstance(value, str) or not _FINGERPRINT.fullmatch(value):
        raise ChannelError(
            "malformed",
            f"the {kind} fingerprint is the SHA-256 of its DER certificate as 64 lower-case "
            f"hex digits (openmeg.protocols.mtls.fingerprint), not {value!r}",
        )
    return value.encode()


def agree_key(
    private: X25519PrivateKey,
    peer_public: bytes,
    *,
    premises_fingerprint: str,
    provider_fingerprint: str,
    subscription: str,
) -> SecretBytes:
    """The subscription's 32-byte message key, the same on both sides: HKDF-SHA256 of the
    X25519 shared secret, salted with both public keys and bound (info) to the premises' and
    the provider's certificate fingerprints and the subscription."""
    if not isinstance(private, X25519PrivateKey):
        raise ChannelError("malformed", "the own key is an X25519 private key (new_agreement_key)")
    if not isinstance(peer_public, bytes) or len(peer_public) != 32:
        raise ChannelError("malformed", "the peer's X25519 public key is 32 raw bytes")
    info = b"\x00".join(
        [
            KEY_INFO,
            _fingerprint("premises", premises_fingerprint),
            _fingerprint("provider", provider_fingerprint),
            _label("the subscription", subscription),
        ]
    )
    own = private.public_key().public_bytes(
        serialization.Encoding.Raw, serialization.PublicFormat.Raw
    )
    try:
        shared = bytearray(private.exchange(X25519PublicKey.from_public_bytes(peer_public)))
    except ValueError as err:  # a low-order point: the shared secret would be all zeros
        raise ChannelError("malformed", "the peer's X25519 public key is not usable") from err
    key = SecretBytes.empty(32)
    try:
        hkdf = HKDF(
            algorithm=hashes.SHA256(),
            length=32,
            salt=b"".join(sorted([own, peer_public])),
            info=info,
        )
        hkdf.derive_into(shared, key.view())
    except BaseException:
        key.wipe()
        raise
    finally:
        shared[:] = bytes(len(shared))
    return key


def _direction_cipher(key: SecretBytes, sender: bytes, receiver: bytes) -> AESGCM:
    """AES-256-GCM under the key of messages from ``sender`` to ``receiver``."""
    with SecretBytes.empty(32) as sub:
        info = b"\x00".join([DIRECTION_INFO, sender, receiver])
        HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=info).derive_into(
            key.view(), sub.view()
        )
        return AESGCM(sub.view())  # OpenSSL keeps its own schedule, cleansed when freed


class Channel:
    """Both directions of one subscription's messages between ``sender`` (this side) and
    ``receiver``: :meth:`seal` what this side sends, :meth:`open` what the peer sent."""

    def __init__(
        self,
        key: SecretBytes,
        *,
        sender: str,
        receiver: str,
        window_s: float = 30.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        me, peer = _label("the sender", sender), _label("the receiver", receiver)
        if me == peer:
            raise ChannelError("malformed", "a channel's sender and receiver are two parties")
        if not isinstance(window_s, int | float) or not (0 < window_s <= 3600):
            raise ChannelError("malformed", f"the window is 0 to 3600 s, not {window_s!r}")
        if not isinstance(key, SecretBytes) or len(key) != 32 or key.wiped:
            raise ChannelError("closed", "a channel needs a live 32-byte SecretBytes key")
        self._key, self._window_ms, self._clock = key, window_s * 1000.0, clock
        self._send: AESGCM | None = _direction_cipher(key, me, peer)
        self._receive: AESGCM | None = _direction_cipher(key, peer, me)
        self._sent = self._accepted = 0
        self._lock = threading.Lock()

    @property
    def closed(self) -> bool:
        """Whether :meth:`close` has wiped the key."""
        return self._send is None

    def _now_ms(self) -> int:
        now = self._clock()
        if not math.isfinite(now) or now < 0:
            raise ChannelError("stale", f"the clock reads {now!r}: fix the time source")
        return int(now * 1000)

    def seal(self, payload: bytes) -> bytes:
        """``payload`` sealed as the next message (next sequence number, the time now)."""
        if not isinstance(payload, bytes | bytearray | memoryview):
            raise ChannelError("malformed", "a payload is bytes")
        if len(payload) > MAX_PAYLOAD:
            raise ChannelError("malformed", f"a payload has at most {MAX_PAYLOAD} bytes")
        with self._lock:
            if self._send is None:
                raise ChannelError("closed", "the channel is closed: subscribe again")
            if self._sent + 1 >= MAX_SEQ:
                raise ChannelError("closed", "this key has sealed its last message: agree again")
            now_ms = self._now_ms()
            self._sent += 1
            header = HEADER.pack(VERSION, self._sent, now_ms, secrets.token_bytes(12))
            return header + self._send.encrypt(header[-12:], bytes(payload), header)

    def open(self, message: bytes) -> bytes:
        """The payload of the peer's ``message``; refused if malformed, tampered (or not from
        the peer under this key), replayed (sequence not above the last) or stale (its time
        outside the window of this side's clock). A refusal changes nothing."""
        if not isinstance(message, bytes | bytearray | memoryview):
            raise ChannelError("malformed", "a message is bytes")
        message = bytes(message)
        if not HEADER.size + TAG <= len(message) <= HEADER.size + TAG + MAX_PAYLOAD:
            raise ChannelError("malformed", f"a message of {len(message)} bytes is not one")
        version, seq, sent_ms, nonce = HEADER.unpack_from(message)
        if version != VERSION:
            raise ChannelError("malformed", f"message version {version}, not {VERSION}")
        with self._lock:
            if self._receive is None:
                raise ChannelError("closed", "the channel is closed: subscribe again")
            try:
                payload = self._receive.decrypt(
                    nonce, message[HEADER.size :], message[: HEADER.size]
                )
            except InvalidTag as err:
                raise ChannelError(
                    "tampered", "the message fails authentication: altered, or not from the peer"
                ) from err
            if seq <= self._accepted:
                raise ChannelError(
                    "replayed", f"message {seq} is not above the last accepted ({self._accepted})"
                )
            skew_ms = abs(self._now_ms() - sent_ms)
            if skew_ms > self._window_ms:
                raise ChannelError(
                    "stale",
                    f"the message was sealed {skew_ms / 1000:.3f} s away from now, outside the "
                    f"{self._window_ms / 1000:g} s window: check both clocks",
                )
            self._accepted = seq
            return payload

    def close(self) -> None:
        """Wipe the key and forget the ciphers; a closed channel refuses every message."""
        with self._lock:
            self._send = self._receive = None
            self._key.wipe()
