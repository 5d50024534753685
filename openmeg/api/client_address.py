"""Who is really calling: the direct peer, or, behind a configured reverse proxy, the address
the proxies recorded in ``X-Forwarded-For``.

The header is believed only when the direct peer is one of the ``trusted_proxies`` (CIDRs; by
default none). Then it is read from the right: each hop that is itself a trusted proxy is
skipped, and the first address that is not is the client (the right-most untrusted address; what
lies left of it was written by the client and proves nothing)."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Sequence

from starlette.types import Scope

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Address = ipaddress.IPv4Address | ipaddress.IPv6Address


def proxy_networks(cidrs: Iterable[str]) -> tuple[Network, ...]:
    """The trusted proxies from CIDR texts (``10.0.0.0/8``, ``127.0.0.1``); a bad one says so."""
    out = []
    for text in cidrs:
        try:
            out.append(ipaddress.ip_network(text.strip(), strict=False))
        except ValueError as err:
            raise ValueError(
                f"{text!r} is not an address or network: give a CIDR such as 10.0.0.0/8"
            ) from err
    return tuple(out)


def _parse(text: str) -> Address | None:
    text = text.strip()
    if text.startswith("[") and "]" in text:  # [v6]:port
        text = text[1 : text.index("]")]
    elif text.count(":") == 1:  # v4:port
        text = text.split(":", 1)[0]
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return None


def _trusted(address: Address | None, proxies: Sequence[Network]) -> bool:
    return address is not None and any(address in net for net in proxies)


def client_address(scope: Scope, proxies: Sequence[Network]) -> str:
    """The caller's address for the login limit and the audit log."""
    client = scope.get("client")
    peer = str(client[0]) if client else "?"
    if not proxies or not _trusted(_parse(peer), proxies):
        return peer
    hops: list[str] = []
    for name, value in scope.get("headers", []):
        if name == b"x-forwarded-for":
            hops += [h for h in value.decode("latin-1").split(",") if h.strip()]
    chosen = peer
    for hop in reversed(hops):
        address = _parse(hop)
        if address is None:  # garbage: the last trusted hop is all we know
            return chosen
        chosen = str(address)
        if not _trusted(address, proxies):
            return chosen
    return chosen
