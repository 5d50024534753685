"""The secure memory area: a secret locked in memory of its own, out of core dumps, never
shown, pickled or copied, and zeroised by wipe."""

import base64
import copy
import ctypes
import logging
import os
import pickle
import sys
from pathlib import Path

import pytest

from openmeg.core import secure_memory
from openmeg.core.secure_memory import SecretBytes, SecretError

KEY = bytes(range(1, 33))


def _mapping_of(address: int) -> tuple[str, dict[str, str]]:
    """The /proc/self/smaps entry of the mapping holding ``address``: its line and fields."""
    header, found = "", False
    fields: dict[str, str] = {}
    for line in Path("/proc/self/smaps").read_text().splitlines():
        first = line.split()[0]
        if "-" in first and ":" not in first:
            if found:
                break
            start, end = (int(x, 16) for x in first.split("-"))
            found, header, fields = start <= address < end, line, {}
        elif found:
            name, _, value = line.partition(":")
            fields[name] = value.strip()
    assert found, f"no mapping holds {address:#x}"
    return header, fields


def test_the_bytes_it_was_given_are_zeroised_and_kept_apart() -> None:
    given = bytearray(KEY)
    secret = SecretBytes(given)
    assert given == bytearray(32)
    assert len(secret) == 32 and not secret.wiped
    assert bytes(secret.view()) == KEY
    assert secret.equals(KEY) and not secret.equals(bytes(32))
    secret.wipe()


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="/proc/self/smaps is Linux's")
def test_the_memory_is_locked_and_left_out_of_core_dumps() -> None:
    with SecretBytes(KEY) as secret:
        assert secret.locked and secret.excluded_from_dumps
        pin = (ctypes.c_char * len(secret)).from_buffer(secret.view())
        header, fields = _mapping_of(ctypes.addressof(pin))
        del pin
        flags = fields["VmFlags"].split()
        assert "lo" in flags and "dd" in flags  # locked (mlock), do not dump (MADV_DONTDUMP)
        assert fields["Locked"] != "0 kB"
        assert header.split()[1] == "rw-p" and len(header.split()) == 5  # private, anonymous


def test_repr_and_str_show_no_byte_of_it() -> None:
    secret = SecretBytes(KEY)
    shown = [repr(secret), str(secret), f"{secret}", f"{secret!r}"]
    for text in shown:
        assert text == "<SecretBytes 32 bytes, locked>"
        for form in (KEY.hex(), repr(KEY), base64.b64encode(KEY).decode(), KEY.decode()):
            assert form not in text
    secret.wipe()
    assert repr(secret) == "<SecretBytes 32 bytes, wiped>"


def test_it_is_never_pickled_copied_or_turned_into_bytes() -> None:
    secret = SecretBytes(KEY)
    for attempt in (
        lambda: pickle.dumps(secret),
        lambda: pickle.dumps(secret, protocol=2),
        lambda: copy.copy(secret),
        lambda: copy.deepcopy(secret),
        lambda: bytes(secret),
    ):
        with pytest.raises(SecretError, match=r"never pickled or copied|not turned into bytes"):
            attempt()
    assert secret.equals(KEY)  # nothing changed
    assert secret == secret and secret != SecretBytes(KEY)  # identity, never content
    secret.wipe()


def test_wipe_zeroises_the_memory_and_releases_every_view() -> None:
    secret = SecretBytes(KEY)
    view = secret.view()
    pin = (ctypes.c_char * 32).from_buffer(secret.view())  # holds the map open past the wipe
    secret.wipe()
    assert pin.raw == bytes(32)
    assert secret.wiped and not secret.locked
    with pytest.raises(ValueError, match="released"):
        bytes(view)
    with pytest.raises(SecretError, match="wiped"):
        secret.view()
    with pytest.raises(SecretError, match="wiped"):
        secret.equals(KEY)
    secret.wipe()  # a second wipe does nothing
    del pin


def test_a_context_manager_wipes_on_exit_even_after_an_error() -> None:
    with pytest.raises(RuntimeError), SecretBytes(KEY) as secret:
        raise RuntimeError("boom")
    assert secret.wiped


def test_empty_fills_in_place() -> None:
    with SecretBytes.empty(4) as secret:
        assert bytes(secret.view()) == bytes(4)
        secret.view()[:] = b"abcd"
        assert secret.equals(b"abcd")
    for size in (0, -1, 1.5, True, (1 << 20) + 1):
        with pytest.raises(SecretError, match="1 to 1048576 bytes"):
            SecretBytes.empty(size)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("given", "message"),
    [
        ("text", "bytes or a bytearray, not str"),
        (memoryview(KEY), "not memoryview"),
        (b"", "1 to 1048576 bytes, not 0"),
        (bytes(1 << 20 | 1), "not 1048577"),
    ],
)
def test_what_cannot_hold_a_secret_is_refused(given: object, message: str) -> None:
    with pytest.raises(SecretError, match=message):
        SecretBytes(given)  # type: ignore[arg-type]


def test_views_dropped_by_their_users_are_released_not_hoarded() -> None:
    with SecretBytes(KEY) as secret:
        for _ in range(100):
            assert secret.view()[0] == 1
        kept = secret.view()
        assert len(secret._views) <= 2
        assert bytes(kept) == KEY


def test_where_memory_cannot_be_locked_it_says_so_and_still_wipes(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(secure_memory, "_LIBC", None)
    with caplog.at_level(logging.WARNING, logger="openmeg.secure_memory"):
        secret = SecretBytes(bytearray(KEY))
    assert not secret.locked and repr(secret) == "<SecretBytes 32 bytes, unlocked>"
    assert "raise the memlock limit" in caplog.text
    assert KEY.hex() not in caplog.text and repr(KEY) not in caplog.text
    pin = (ctypes.c_char * 32).from_buffer(secret.view())
    secret.wipe()
    assert pin.raw == bytes(32)
    del pin


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="MADV_WIPEONFORK is Linux's")
def test_a_forked_child_sees_zeros_not_the_secret() -> None:
    with SecretBytes(KEY) as secret:
        read, write = os.pipe()
        pid = os.fork()
        if pid == 0:  # the child: report what it sees, and go
            os.write(write, bytes(secret.view()))
            os._exit(0)
        os.close(write)
        _, status = os.waitpid(pid, 0)
        seen = os.read(read, 64)
        os.close(read)
        assert status == 0 and seen == bytes(32)
        assert secret.equals(KEY)  # the parent's is untouched
