"""After a subscription and an unsubscribe, the message key is nowhere: not in the store, not in
the logs, not in any file under the working directory (raw, hex or base64)."""

from __future__ import annotations

import base64
import logging
from pathlib import Path

import pytest

from openmeg.customer.provisioning import key_name
from tests.customer.provisioning_world import offer, world
from tests.customer.test_provisioning import FakeBas, discover_with


def _forms(key: bytes) -> list[bytes]:
    """The key as raw bytes, hex (both cases) and base64 (standard, URL-safe, unpadded)."""
    b64 = base64.b64encode(key)
    return [
        key,
        key.hex().encode(),
        key.hex().upper().encode(),
        b64,
        b64.rstrip(b"="),
        base64.urlsafe_b64encode(key).rstrip(b"="),
        base64.b32encode(key).rstrip(b"="),
    ]


async def test_no_byte_string_of_the_message_key_is_left_anywhere(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.chdir(tmp_path)
    caplog.set_level(logging.DEBUG)
    log_file = tmp_path / "openmeg.log"
    handler = logging.FileHandler(log_file)
    handler.setLevel(logging.DEBUG)
    logging.getLogger().addHandler(handler)
    bas = FakeBas()
    try:
        async with world(tmp_path, bas, discover_with(bas)) as w:
            ad = await w.provider.register(w.advertiser_at, offer(w.provider.endpoint))
            p = w.service.provisioning
            sub = await p.subscribe(ad)
            key = sub.key.view().tobytes()
            assert w.keystore.get(key_name(sub.id)) == key  # sealed while subscribed
            answers = await w.provider.optimise(sub.id, [0.1, 0.3])
            assert [a["ok"] for a in answers] == [True, True]
            logging.getLogger("openmeg.test").info("status %s", p.status())
            theirs = w.provider.subscribers[sub.id].channel
            await p.unsubscribe(sub.id)
            assert sub.key.wiped and theirs.closed
            assert key_name(sub.id) not in w.keystore.names()
    finally:
        logging.getLogger().removeHandler(handler)
        handler.close()
    files = [f for f in tmp_path.rglob("*") if f.is_file()]
    assert tmp_path / "meg.db" in files and log_file in files
    logged = log_file.read_text()
    assert "subscribed" in logged and "unsubscribed" in logged  # logged, and searched
    texts = {str(f): f.read_bytes() for f in files} | {"caplog": caplog.text.encode()}
    for form in _forms(key):
        found = [name for name, data in texts.items() if form in data]
        assert not found, f"a form of the key is in {found}"
