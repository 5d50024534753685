"""Stand-in for ``openmeg.core.keystore`` with its API (unsealed; removed once it is merged)."""

from __future__ import annotations

import base64
import json
import os
import secrets
from pathlib import Path


class Keystore:
    """Named secrets in one file readable by its owner only."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._items: dict[str, bytes] = {}
        if path.exists():
            raw = json.loads(path.read_text())
            self._items = {k: base64.b64decode(v) for k, v in raw.items()}

    @classmethod
    def open(cls, path: Path, kek: object = None) -> Keystore:
        return cls(path)

    def secret(self, name: str, *, size: int = 32) -> bytes:
        found = self.get(name)
        if found is None:
            found = secrets.token_bytes(size)
            self.put(name, found)
        return found

    def get(self, name: str) -> bytes | None:
        return self._items.get(name)

    def put(self, name: str, value: bytes) -> None:
        self._items[name] = value
        data = json.dumps({k: base64.b64encode(v).decode() for k, v in self._items.items()})
        fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(data)

    def names(self) -> list[str]:
        return sorted(self._items)


def open_keystore(path: Path | None = None, *, site_id: str) -> Keystore:
    """The keystore at ``path``, else ``$OPENMEG_KEYSTORE``, else ``./openmeg-<site>.keystore``."""
    where = path or Path(os.environ.get("OPENMEG_KEYSTORE", f"openmeg-{site_id}.keystore"))
    return Keystore.open(where)
