"""The secure memory area: a secret's bytes in memory of their own, locked against swap
(``mlock``), left out of core dumps (``MADV_DONTDUMP``) and zeros in a forked child
(``MADV_WIPEONFORK``) where the OS allows; never shown by ``repr`` or ``str``, never pickled
or copied, and zeroised by :meth:`SecretBytes.wipe` (docs/provisioning-security.md)."""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import hmac
import logging
import mmap
import sys
import threading
from types import TracebackType
from typing import Any, NoReturn

from openmeg.core.errors import OpenMegError

__all__ = ["SecretBytes", "SecretError"]

MAX_SECRET = 1 << 20  # bytes: a key, a key file, never bulk data
log = logging.getLogger("openmeg.secure_memory")


class SecretError(OpenMegError):
    """A secret was used after it was wiped, or given in a form that cannot hold one."""


def _libc() -> Any:
    name = ctypes.util.find_library("c")
    try:
        return ctypes.CDLL(name, use_errno=True) if name else None
    except OSError:
        return None


_LIBC = _libc()


def _address(area: mmap.mmap) -> tuple[int, Any]:
    """The address of ``area`` and the ctypes view that pins it (released by the caller)."""
    pin = (ctypes.c_char * len(area)).from_buffer(area)
    return ctypes.addressof(pin), pin


def _mlock(area: mmap.mmap) -> bool:
    if _LIBC is None:
        return False
    address, pin = _address(area)
    try:
        return bool(_LIBC.mlock(ctypes.c_void_p(address), ctypes.c_size_t(len(area))) == 0)
    finally:
        del pin


def _munlock(area: mmap.mmap) -> None:
    if _LIBC is not None:
        address, pin = _address(area)
        try:
            _LIBC.munlock(ctypes.c_void_p(address), ctypes.c_size_t(len(area)))
        finally:
            del pin


def _advise(area: mmap.mmap, flag: int | None) -> bool:
    if flag is None:
        return False
    try:
        area.madvise(flag)
    except (OSError, ValueError):
        return False
    return True


MADV_WIPEONFORK = 18 if sys.platform.startswith("linux") else None  # Linux 4.14; not in mmap


class SecretBytes:
    """A secret held in a private anonymous memory map of its own (page-aligned, so locking
    and the dump exclusion touch no other object); a context manager that wipes on exit."""

    __slots__ = ("__weakref__", "_area", "_dontdump", "_guard", "_locked", "_size", "_views")

    def __init__(self, data: bytes | bytearray) -> None:
        if not isinstance(data, bytes | bytearray):
            raise SecretError(
                f"a secret is given as bytes or a bytearray, not {type(data).__name__}"
            )
        if not 0 < len(data) <= MAX_SECRET:
            raise SecretError(f"a secret has 1 to {MAX_SECRET} bytes, not {len(data)}")
        self._size = len(data)
        self._guard = threading.Lock()
        self._views: list[memoryview] = []
        self._area: mmap.mmap | None = mmap.mmap(
            -1, self._size, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS
        )
        self._locked = _mlock(self._area)
        self._dontdump = _advise(self._area, getattr(mmap, "MADV_DONTDUMP", None))
        _advise(self._area, MADV_WIPEONFORK)  # a forked child sees zeros, not the secret
        if not self._locked:
            log.warning(
                "a secret's memory could not be locked against swap (RLIMIT_MEMLOCK): "
                "raise the memlock limit of the openmeg service"
            )
        self._area[:] = data
        if isinstance(data, bytearray):
            data[:] = bytes(len(data))

    @classmethod
    def empty(cls, size: int) -> SecretBytes:
        """A secret of ``size`` zero bytes, to be filled in place through :meth:`view`."""
        if not isinstance(size, int) or isinstance(size, bool) or not 0 < size <= MAX_SECRET:
            raise SecretError(f"a secret has 1 to {MAX_SECRET} bytes, not {size!r}")
        return cls(bytearray(size))

    @property
    def locked(self) -> bool:
        """Whether the OS locked the secret's memory against swap."""
        return self._locked and self._area is not None

    @property
    def excluded_from_dumps(self) -> bool:
        """Whether the OS leaves the secret's memory out of core dumps."""
        return self._dontdump and self._area is not None

    @property
    def wiped(self) -> bool:
        """Whether :meth:`wipe` has zeroised the secret."""
        return self._area is None

    def view(self) -> memoryview:
        """A writable view of the secret's bytes, released by :meth:`wipe`: never keep a copy."""
        with self._guard:
            if self._area is None:
                raise SecretError("the secret was wiped: agree or load the key again")
            self._forget_dropped_views()
            view = memoryview(self._area)
            self._views.append(view)
            return view

    def _forget_dropped_views(self) -> None:
        kept = []
        for view in self._views:
            if sys.getrefcount(view) > 3:  # held elsewhere than the list, the loop, the call
                kept.append(view)
                continue
            try:
                view.release()
            except BufferError:  # something made from it still holds it
                kept.append(view)
        self._views = kept

    def equals(self, other: bytes | bytearray | memoryview) -> bool:
        """Whether ``other`` holds the same bytes (in constant time)."""
        with self._guard:
            if self._area is None:
                raise SecretError("the secret was wiped: agree or load the key again")
            return hmac.compare_digest(memoryview(self._area), other)

    def wipe(self) -> None:
        """Zeroise the secret, unlock and unmap its memory; a second wipe does nothing."""
        with self._guard:
            area, self._area = self._area, None
            if area is None:
                return
            ctypes.memset(_address(area)[0], 0, self._size)
            for view in self._views:
                with contextlib.suppress(BufferError):  # still exported: zeros already
                    view.release()
            self._views.clear()
            if self._locked:
                _munlock(area)
            try:
                area.close()
            except BufferError:  # a view of a view is still held: its bytes are zeros already
                log.debug("a wiped secret's memory is unmapped when its last view goes")

    def __len__(self) -> int:
        return self._size

    def __repr__(self) -> str:
        state = "wiped" if self._area is None else ("locked" if self._locked else "unlocked")
        return f"<SecretBytes {self._size} bytes, {state}>"

    __str__ = __repr__

    def __enter__(self) -> SecretBytes:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self.wipe()

    def __del__(self) -> None:
        if getattr(self, "_area", None) is not None:
            self.wipe()

    def _refuse(self, *_: object) -> NoReturn:
        raise SecretError("a secret is never pickled or copied: keep it in the keystore")

    __reduce__ = __reduce_ex__ = __getstate__ = __copy__ = __deepcopy__ = _refuse

    def __eq__(self, other: object) -> bool:
        return other is self

    __hash__ = object.__hash__

    def __bytes__(self) -> NoReturn:
        raise SecretError("a secret is not turned into bytes: use view() where a key is needed")
