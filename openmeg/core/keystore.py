"""The keystore: every secret of the site (token signing key, audit key, CA key, broker
passwords) in one file, each sealed with AES-256-GCM under a key-encryption key (KEK) with its
name as associated data. The file is mode 0600, written atomically under a lock; see
docs/security.md for the KEK sources and what lives where."""

from __future__ import annotations

import base64
import contextlib
import fcntl
import json
import logging
import os
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from openmeg.core.keystore_kek import (
    KeyEncryptionKey,
    KeystoreError,
    development_kek,
    development_kek_path,
    keyring_kek,
)
from openmeg.core.private_files import PRIVATE, tighten, write_private

__all__ = ["KeyEncryptionKey", "Keystore", "KeystoreError", "open_keystore"]

FORMAT = "openmeg-keystore/1"
_CHECK = b"openmeg keystore: the key-encryption key is right"
PATH_ENV, PASSPHRASE_ENV = "OPENMEG_KEYSTORE", "OPENMEG_KEYSTORE_PASSPHRASE"
log = logging.getLogger("openmeg.keystore")


def _aad(kind: str, text: str) -> bytes:
    return f"{FORMAT}\x00{kind}\x00{text}".encode()


def _seal(key: bytes, plain: bytes, aad: bytes) -> str:
    nonce = secrets.token_bytes(12)
    return base64.b64encode(nonce + AESGCM(key).encrypt(nonce, plain, aad)).decode()


def _open(key: bytes, sealed: str, aad: bytes) -> bytes:
    raw = base64.b64decode(sealed.encode(), validate=True)
    return AESGCM(key).decrypt(raw[:12], raw[12:], aad)


class Keystore:
    """Named secrets sealed at rest; ``open`` creates the file (mode 0600) if absent."""

    def __init__(self, path: Path, key: bytes, header: dict[str, Any], kek: str) -> None:
        self.path, self._key, self._header, self._kek = path, key, header, kek

    @property
    def source(self) -> str:
        """Where the KEK came from: passphrase, keyring or file (development)."""
        return str(self._header["source"])

    @classmethod
    def open(cls, path: Path, kek: KeyEncryptionKey) -> Keystore:
        """The keystore at ``path`` unlocked with ``kek``; created sealed with it if absent."""
        path = Path(path)
        with _locked(path):
            if not path.exists():
                key, header = kek.unlock(None)
                check = _seal(key, _CHECK, _aad("check", _canon(header)))
                new: dict[str, Any] = {"format": FORMAT, "kek": header, "check": check}
                write_private(path, _dump(new | {"secrets": {}}))
                return cls(path, key, header, kek.describe)
            tighten(path)
            data = _read(path)
            if kek.source != data["kek"].get("source"):
                raise KeystoreError(
                    f"the keystore {path} is sealed with a {data['kek'].get('source')} key, "
                    f"not {kek.describe}: see docs/security.md"
                )
            key, _ = kek.unlock(data["kek"])
            try:
                _open(key, data["check"], _aad("check", _canon(data["kek"])))
            except (InvalidTag, ValueError) as err:
                raise KeystoreError(
                    f"the keystore {path} cannot be opened with {kek.describe}: give the "
                    f"passphrase or key it was sealed with ({PASSPHRASE_ENV})"
                ) from err
            return cls(path, key, data["kek"], kek.describe)

    def get(self, name: str) -> bytes | None:
        """The secret ``name``, or None if the keystore has none of that name."""
        return self._unseal(_read(self.path), name)

    def secret(self, name: str, *, size: int = 32) -> bytes:
        """The secret ``name``; made (``size`` random bytes) and kept on first use."""
        found = self.get(name)
        if found is not None:
            return found
        with _locked(self.path):
            data = _read(self.path)  # another process may have made it meanwhile
            found = self._unseal(data, name)
            if found is None:
                found = secrets.token_bytes(size)
                self._write(data, {name: found})
            return found

    def put(self, name: str, value: bytes) -> None:
        """Keep ``value`` as the secret ``name`` (replacing any before)."""
        with _locked(self.path):
            self._write(_read(self.path), {name: bytes(value)})

    def delete(self, name: str) -> bool:
        """Remove the secret ``name``; whether the keystore had one of that name."""
        with _locked(self.path):
            data = _read(self.path)
            if data["kek"] != self._header:
                raise KeystoreError(f"the keystore {self.path} was sealed again: open it again")
            if data["secrets"].pop(_valid(name), None) is None:
                return False
            write_private(self.path, _dump(data))
            return True

    def names(self) -> list[str]:
        """The names of the secrets kept, sorted."""
        return sorted(_read(self.path)["secrets"])

    def rekey(self, kek: KeyEncryptionKey) -> None:
        """Seal every secret again under ``kek`` (a new passphrase, or the OS keyring)."""
        with _locked(self.path):
            data = _read(self.path)
            plain = {n: self._unseal(data, n) or b"" for n in data["secrets"]}
            key, header = kek.unlock(None)
            self._key, self._header, self._kek = key, header, kek.describe
            check = _seal(key, _CHECK, _aad("check", _canon(header)))
            self._write({"format": FORMAT, "kek": header, "check": check, "secrets": {}}, plain)

    def _unseal(self, data: dict[str, Any], name: str) -> bytes | None:
        if data["kek"] != self._header:
            raise KeystoreError(f"the keystore {self.path} was sealed again: open it again")
        sealed = data["secrets"].get(_valid(name))
        if sealed is None:
            return None
        try:
            return _open(self._key, sealed, _aad("secret", name))
        except (InvalidTag, ValueError) as err:
            raise KeystoreError(
                f"the secret {name!r} in the keystore {self.path} was altered or is damaged: "
                "restore the keystore from a backup"
            ) from err

    def _write(self, data: dict[str, Any], values: dict[str, bytes]) -> None:
        for name, value in values.items():
            data["secrets"][_valid(name)] = _seal(self._key, value, _aad("secret", name))
        write_private(self.path, _dump(data))


def _valid(name: str) -> str:
    if not name or len(name) > 128 or not name.isprintable():
        raise KeystoreError(f"a secret's name has 1 to 128 printable characters, not {name!r}")
    return name


def _canon(obj: Any) -> str:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"))


def _dump(data: dict[str, Any]) -> bytes:
    return (json.dumps(data, indent=1, sort_keys=True) + "\n").encode()


def _read(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_bytes())
    except FileNotFoundError as err:
        raise KeystoreError(f"the keystore {path} is gone: restore it from a backup") from err
    except (OSError, ValueError) as err:
        raise KeystoreError(f"the keystore {path} cannot be read: {err}") from err
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise KeystoreError(f"{path} is not an openmeg keystore ({FORMAT})")
    if not isinstance(data.get("kek"), dict) or not isinstance(data.get("secrets"), dict):
        raise KeystoreError(f"the keystore {path} is damaged: restore it from a backup")
    return data


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    """An exclusive lock (a ``.lock`` file beside the keystore) against other writers."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path.with_name(path.name + ".lock"), os.O_RDWR | os.O_CREAT, PRIVATE)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # releases the lock


def default_path(site_id: str) -> Path:
    """OPENMEG_KEYSTORE, else ``openmeg-<site>.keystore`` in the working directory."""
    return Path(os.environ.get(PATH_ENV) or f"openmeg-{site_id}.keystore")


def open_keystore(path: Path | None = None, *, site_id: str) -> Keystore:
    """The site's keystore (``path``, else :func:`default_path`), unlocked with the KEK its
    file names: OPENMEG_KEYSTORE_PASSPHRASE, the OS keyring, or the development key file.
    A new keystore takes the first of these there is; a development one is sealed again
    under the passphrase once one is set."""
    path = Path(path) if path is not None else default_path(site_id)
    passphrase = os.environ.get(PASSPHRASE_ENV)
    source = _read(path)["kek"].get("source") if path.exists() else None
    if source == "passphrase" or (source is None and passphrase):
        if not passphrase:
            raise KeystoreError(
                f"the keystore {path} is sealed with a passphrase: set {PASSPHRASE_ENV}"
            )
        return Keystore.open(path, KeyEncryptionKey.passphrase(passphrase))
    if source in (None, "keyring"):
        kek = keyring_kek(site_id, create=source is None)
        if kek is not None:
            return Keystore.open(path, kek)
        if source == "keyring":
            raise KeystoreError(
                f"the keystore {path} is sealed with a key in the OS keyring, and the keyring "
                f"has none for site {site_id}: unlock the keyring or restore its key"
            )
    dev = development_kek(site_id, create=source is None)
    if dev is None:
        raise KeystoreError(
            f"the keystore {path} is sealed with the development key "
            f"{development_kek_path(site_id)}, which is gone: restore it from a backup"
        )
    store = Keystore.open(path, dev)
    if passphrase:
        store.rekey(KeyEncryptionKey.passphrase(passphrase))
        log.warning("the keystore %s is now sealed with the passphrase in %s", path, PASSPHRASE_ENV)
        return store
    log.warning(
        "warning: the keystore %s is sealed with a development key (%s), as there is no "
        "passphrase and no OS keyring: set %s or install a keyring backend (docs/security.md)",
        path,
        development_kek_path(site_id),
        PASSPHRASE_ENV,
    )
    return store
