"""Keystores for tests: sealed with a passphrase at argon2id's cheap test cost."""

from __future__ import annotations

import atexit
import shutil
import tempfile
from pathlib import Path

from openmeg.core.keystore import KeyEncryptionKey, Keystore
from openmeg.core.keystore_kek import FAST_KDF

PASSPHRASE = "a passphrase for tests only"
_shared: list[Keystore] = []


def test_keystore(path: Path) -> Keystore:
    """A keystore at ``path`` (made if absent) sealed with the tests' passphrase."""
    return Keystore.open(path, KeyEncryptionKey.passphrase(PASSPHRASE, cost=FAST_KDF))


def shared_keystore() -> Keystore:
    """One keystore for the whole test session, in a folder removed at exit."""
    if not _shared:
        folder = Path(tempfile.mkdtemp(prefix="openmeg-test-keys-"))
        atexit.register(shutil.rmtree, folder, True)
        _shared.append(test_keystore(folder / "tests.keystore"))
    return _shared[0]


def audit_key() -> bytes:
    """The audit key of the shared keystore."""
    return shared_keystore().secret("audit/hmac")


def env_keystore(site_id: str = "demo") -> Keystore:
    """The keystore the commands open (OPENMEG_KEYSTORE, set for every test by conftest)."""
    from openmeg.core.keystore import open_keystore

    return open_keystore(site_id=site_id)


test_keystore.__test__ = False  # type: ignore[attr-defined]
