"""A subscription's key leaves the keystore for good when it is deleted."""

import json
from pathlib import Path

import pytest

from openmeg.core.keystore import KeystoreError
from tests.keys import test_keystore


def test_a_deleted_secret_is_gone_and_the_others_stay(tmp_path: Path) -> None:
    keys = test_keystore(tmp_path / "site.keystore")
    keys.put("provisioning/sub-1/message-key", b"k" * 32)
    keys.put("provisioning/sub-2/message-key", b"j" * 32)
    sealed = json.loads(keys.path.read_text())["secrets"]["provisioning/sub-1/message-key"]
    assert keys.delete("provisioning/sub-1/message-key") is True
    assert keys.get("provisioning/sub-1/message-key") is None
    assert keys.names() == ["provisioning/sub-2/message-key"]
    assert keys.get("provisioning/sub-2/message-key") == b"j" * 32
    assert sealed not in keys.path.read_text()
    assert keys.path.stat().st_mode & 0o777 == 0o600
    assert keys.delete("provisioning/sub-1/message-key") is False  # nothing more to delete
    again = test_keystore(tmp_path / "site.keystore")
    assert again.names() == ["provisioning/sub-2/message-key"]


def test_a_bad_name_is_refused_and_changes_nothing(tmp_path: Path) -> None:
    keys = test_keystore(tmp_path / "site.keystore")
    keys.put("provisioning/sub-1/message-key", b"k" * 32)
    before = keys.path.read_bytes()
    for bad in ("", "x" * 129, "line\nbreak"):
        with pytest.raises(KeystoreError, match="1 to 128 printable"):
            keys.delete(bad)
    assert keys.path.read_bytes() == before
