"""The caller's address: X-Forwarded-For believed from trusted proxies only, read from the right."""

from __future__ import annotations

import re

import pytest

from openmeg.api.client_address import client_address, proxy_networks

PROXIES = proxy_networks(["10.0.0.0/8", "fd00::/8"])


def scope(peer: str, *forwarded: str) -> dict[str, object]:
    headers = [(b"x-forwarded-for", f.encode()) for f in forwarded]
    return {"client": (peer, 40000), "headers": headers}


@pytest.mark.parametrize(
    ("peer", "forwarded", "proxies", "client"),
    [
        ("203.0.113.5", ["1.2.3.4"], PROXIES, "203.0.113.5"),  # an untrusted peer: its own
        ("10.0.0.1", ["1.2.3.4"], (), "10.0.0.1"),  # no proxy configured: the peer
        ("10.0.0.1", ["1.2.3.4"], PROXIES, "1.2.3.4"),
        ("10.0.0.1", ["6.6.6.6, 1.2.3.4"], PROXIES, "1.2.3.4"),  # the right-most untrusted
        ("10.0.0.1", ["6.6.6.6, 1.2.3.4, 10.9.9.9"], PROXIES, "1.2.3.4"),  # proxies skipped
        ("10.0.0.1", ["6.6.6.6", "1.2.3.4"], PROXIES, "1.2.3.4"),  # two headers, in order
        ("10.0.0.1", ["10.2.2.2, 10.3.3.3"], PROXIES, "10.2.2.2"),  # all proxies: the first
        ("10.0.0.1", ["1.2.3.4, garbage"], PROXIES, "10.0.0.1"),  # garbage: the last proxy
        ("10.0.0.1", [], PROXIES, "10.0.0.1"),
        ("10.0.0.1", ["1.2.3.4:5678"], PROXIES, "1.2.3.4"),
        ("fd00::1", ["[2001:db8::7]:443"], PROXIES, "2001:db8::7"),
    ],
)
def test_the_client_address(
    peer: str, forwarded: list[str], proxies: tuple[object, ...], client: str
) -> None:
    assert client_address(scope(peer, *forwarded), proxies) == client  # type: ignore[arg-type]


def test_a_bad_proxy_is_named() -> None:
    with pytest.raises(ValueError, match=re.escape("'10.0.0/33' is not an address or network")):
        proxy_networks(["10.0.0/33"])
    assert [str(n) for n in proxy_networks(["127.0.0.1", "10.1.2.3/8"])] == [
        "127.0.0.1/32",
        "10.0.0.0/8",
    ]


def test_openmeg_run_names_a_bad_trusted_proxy() -> None:
    import subprocess
    import sys

    done = subprocess.run(
        [sys.executable, "-m", "openmeg", "run", "--trusted-proxy", "10.0.0/33", "--cycles", "1"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2, done.stderr
    assert "--trusted-proxy '10.0.0/33' is not an address or network" in done.stderr
