"""Key-encryption keys (KEK) that seal the keystore: a passphrase (argon2id, its salt and cost
kept in the keystore file), a random key in the OS keyring, or a development key file kept in
the user's configuration folder (outside the working directory)."""

from __future__ import annotations

import base64
import os
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from argon2.low_level import Type, hash_secret_raw

from openmeg.core.errors import OpenMegError
from openmeg.core.private_files import write_private

KEY_BYTES = 32
KEYRING_SERVICE = "openmeg"
FAST_KDF_ENV = "OPENMEG_KEYSTORE_KDF"  # "fast": cheap argon2id, for tests only


class KeystoreError(OpenMegError):
    """The keystore cannot be opened or read (wrong passphrase, altered file, no KEK)."""


@dataclass(frozen=True, kw_only=True)
class KdfCost:
    """argon2id cost: passes, memory in KiB, lanes (RFC 9106's second recommendation)."""

    time_cost: int = 3
    memory_kib: int = 65536
    parallelism: int = 4


FAST_KDF = KdfCost(time_cost=1, memory_kib=1024, parallelism=1)  # tests only


def default_cost() -> KdfCost:
    """RFC 9106's cost, or the cheap one when OPENMEG_KEYSTORE_KDF=fast (tests only)."""
    return FAST_KDF if os.environ.get(FAST_KDF_ENV) == "fast" else KdfCost()


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def _unb64(text: str) -> bytes:
    return base64.b64decode(text.encode(), validate=True)


@dataclass(frozen=True, kw_only=True)
class KeyEncryptionKey:
    """Where the KEK comes from (``source``) and how to get its 32 bytes for a keystore header."""

    source: str  # passphrase, keyring or file
    describe: str  # said in errors: "this passphrase", "the key in the OS keyring ..."
    _derive: Callable[[dict[str, Any] | None], tuple[bytes, dict[str, Any]]] = field(repr=False)

    def unlock(self, header: dict[str, Any] | None) -> tuple[bytes, dict[str, Any]]:
        """The key for a keystore with this ``header`` (None: a new one) and the header to keep."""
        return self._derive(header)

    @classmethod
    def passphrase(cls, text: str, *, cost: KdfCost | None = None) -> KeyEncryptionKey:
        """A KEK derived from ``text`` with argon2id (``cost`` for a new keystore only)."""
        if not text:
            raise KeystoreError("an empty passphrase seals nothing: choose a long one")
        secret = text.encode()

        def derive(header: dict[str, Any] | None) -> tuple[bytes, dict[str, Any]]:
            if header is None:
                c = cost or default_cost()
                header = {
                    "source": "passphrase",
                    "kdf": "argon2id",
                    "salt": _b64(secrets.token_bytes(16)),
                    "time_cost": c.time_cost,
                    "memory_kib": c.memory_kib,
                    "parallelism": c.parallelism,
                }
            try:
                key = hash_secret_raw(
                    secret,
                    _unb64(header["salt"]),
                    time_cost=int(header["time_cost"]),
                    memory_cost=int(header["memory_kib"]),
                    parallelism=int(header["parallelism"]),
                    hash_len=KEY_BYTES,
                    type=Type.ID,
                )
            except (KeyError, ValueError, TypeError) as err:
                raise KeystoreError(
                    f"the keystore's passphrase parameters are damaged: {err}"
                ) from err
            return key, header

        return cls(source="passphrase", describe="this passphrase", _derive=derive)

    @classmethod
    def raw(cls, key: bytes, *, source: str, describe: str) -> KeyEncryptionKey:
        """A KEK of 32 given bytes (from the OS keyring or a key file)."""
        if len(key) != KEY_BYTES:
            raise KeystoreError(f"{describe} is not a {KEY_BYTES}-byte key")

        def derive(header: dict[str, Any] | None) -> tuple[bytes, dict[str, Any]]:
            return key, {"source": source}

        return cls(source=source, describe=describe, _derive=derive)


def usable_keyring() -> Any | None:
    """The OS keyring backend, or None when there is none that can keep a secret."""
    try:
        import keyring
        from keyring.backends import chainer, fail
    except ImportError:
        return None
    backend = keyring.get_keyring()
    if isinstance(backend, fail.Keyring):
        return None
    if isinstance(backend, chainer.ChainerBackend) and not backend.backends:
        return None
    return backend


def keyring_kek(site_id: str, *, create: bool) -> KeyEncryptionKey | None:
    """The site's KEK in the OS keyring (service ``openmeg``), made if absent and ``create``;
    None when there is no usable keyring (or no KEK there and not ``create``)."""
    backend = usable_keyring()
    if backend is None:
        return None
    from keyring.errors import KeyringError

    user = f"keystore-kek/{site_id}"
    describe = f"the key in the OS keyring (service {KEYRING_SERVICE}, {user})"
    try:
        text = backend.get_password(KEYRING_SERVICE, user)
        if text is None:
            if not create:
                return None
            text = _b64(secrets.token_bytes(KEY_BYTES))
            backend.set_password(KEYRING_SERVICE, user, text)
    except KeyringError as err:
        if create:
            return None
        raise KeystoreError(f"the OS keyring cannot be read: {err}") from err
    return KeyEncryptionKey.raw(_unb64(text), source="keyring", describe=describe)


def development_kek_path(site_id: str) -> Path:
    """Where the development KEK of a site is kept: the user's configuration folder."""
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "openmeg" / f"keystore-kek-{site_id}"


def development_kek(site_id: str, *, create: bool) -> KeyEncryptionKey | None:
    """The development KEK file (mode 0600, its folder 0700), made if absent and ``create``."""
    path = development_kek_path(site_id)
    if not path.exists():
        if not create:
            return None
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        write_private(path, _b64(secrets.token_bytes(KEY_BYTES)).encode() + b"\n")
    path.chmod(0o600)
    try:
        key = _unb64(path.read_text().strip())
    except ValueError as err:
        raise KeystoreError(f"the development key {path} is damaged: {err}") from err
    return KeyEncryptionKey.raw(key, source="file", describe=f"the development key {path}")
