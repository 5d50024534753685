"""Refused TLS handshakes named for the audit log, and the client certificate's fingerprint
given to an HTTPS route (a plain uvicorn server's ASGI scope)."""

from __future__ import annotations

import logging
import ssl
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import uvicorn
from uvicorn.config import HTTP_PROTOCOLS
from uvicorn.importer import import_from_string

from openmeg.protocols.mtls import MtlsError, peer_fingerprint

__all__ = [
    "PEER_FINGERPRINT",
    "HandshakeRefusal",
    "asgi_peer_fingerprint",
    "expose_peer_fingerprints",
    "refusal",
    "watch_handshakes",
]

log = logging.getLogger("openmeg.mtls")
PEER_FINGERPRINT = "openmeg.tls_peer_fingerprint"  # its key in an ASGI request's scope["state"]


_BY_VERIFY_CODE = {
    2: "unknown-ca", 3: "no-crl", 7: "bad-signature", 9: "not-yet-valid", 10: "expired",
    12: "crl-expired", 18: "unknown-ca", 19: "unknown-ca", 20: "unknown-ca", 21: "unknown-ca",
    23: "revoked", 26: "wrong-purpose", 62: "host-mismatch", 64: "host-mismatch",
}  # fmt: skip
_BY_REASON = {
    "PEER_DID_NOT_RETURN_A_CERTIFICATE": "no-client-certificate",
    "TLSV13_ALERT_CERTIFICATE_REQUIRED": "no-client-certificate",
    "TLSV1_ALERT_UNKNOWN_CA": "unknown-ca",
    "SSLV3_ALERT_CERTIFICATE_EXPIRED": "expired",
    "SSLV3_ALERT_CERTIFICATE_REVOKED": "revoked",
    "SSLV3_ALERT_UNSUPPORTED_CERTIFICATE": "wrong-purpose",
    "UNSUPPORTED_PROTOCOL": "protocol-version",
    "WRONG_VERSION_NUMBER": "protocol-version",
    "TLSV1_ALERT_PROTOCOL_VERSION": "protocol-version",
    "NO_SHARED_CIPHER": "no-shared-cipher",
    "NO_CIPHERS_AVAILABLE": "no-shared-cipher",
    "SSLV3_ALERT_HANDSHAKE_FAILURE": "handshake-failed",
}


@dataclass(frozen=True, kw_only=True)
class HandshakeRefusal:
    """Why a TLS handshake was refused: ``kind`` a stable name for the audit log (expired,
    revoked, unknown-ca, no-client-certificate, protocol-version, no-shared-cipher,
    wrong-purpose, host-mismatch, crl-expired, ...), ``detail`` OpenSSL's words."""

    kind: str
    detail: str


def refusal(error: BaseException) -> HandshakeRefusal | None:
    """The refusal an error (or the error it was raised from, as httpx's are) stands for;
    None if no TLS error is in its chain."""
    seen: set[int] = set()
    found: BaseException | None = error
    while found is not None and id(found) not in seen and not isinstance(found, ssl.SSLError):
        seen.add(id(found))
        found = found.__cause__ or found.__context__
    if not isinstance(found, ssl.SSLError):
        return None
    if isinstance(found, ssl.SSLCertVerificationError):
        kind = _BY_VERIFY_CODE.get(found.verify_code, "certificate-refused")
        return HandshakeRefusal(kind=kind, detail=str(found.verify_message))
    reason = str(getattr(found, "reason", None) or "")
    return HandshakeRefusal(kind=_BY_REASON.get(reason, "handshake-failed"), detail=str(found))


def watch_handshakes(
    ctx: ssl.SSLContext, on_refused: Callable[[HandshakeRefusal], None]
) -> ssl.SSLContext:
    """``ctx``, made to call ``on_refused`` (on the thread doing the handshake: keep it quick)
    for every handshake it refuses or that fails, in asyncio and uvicorn servers and in
    blocking sockets alike; the refusal itself goes on as before."""

    def report(err: ssl.SSLError) -> None:
        if isinstance(err, ssl.SSLWantReadError | ssl.SSLWantWriteError):
            return  # not a failure: the handshake waits for more bytes
        found = refusal(err)
        if found is None:
            return
        try:
            on_refused(found)
        except Exception:  # the refusal stands whatever the watcher does
            log.exception("reporting a refused TLS handshake (%s) failed", found.kind)

    class WatchedObject(ssl.SSLObject):
        def do_handshake(self) -> None:
            try:
                super().do_handshake()
            except ssl.SSLError as err:
                report(err)
                raise

    class WatchedSocket(ssl.SSLSocket):
        def do_handshake(self, block: bool = False) -> None:
            try:
                super().do_handshake(block)
            except ssl.SSLError as err:
                report(err)
                raise

    ctx.sslobject_class = WatchedObject
    ctx.sslsocket_class = WatchedSocket
    return ctx


def expose_peer_fingerprints(config: uvicorn.Config) -> None:
    """Make a uvicorn server (e.g. ``HttpServer(...).server.config``, before it starts) put the
    client certificate's fingerprint of each TLS connection into its requests' state, read
    with :func:`asgi_peer_fingerprint`."""
    if config.loaded:
        raise MtlsError("expose the peer fingerprints before the server starts")
    base = config.http
    if isinstance(base, str):
        base = import_from_string(HTTP_PROTOCOLS.get(base, base))

    class PeerProtocol(base):  # type: ignore[misc, valid-type]
        app_state: dict[str, Any]

        def connection_made(self, transport: Any) -> None:
            ssl_object = transport.get_extra_info("ssl_object")
            state = {k: v for k, v in self.app_state.items() if k != PEER_FINGERPRINT}
            if ssl_object is not None and ssl_object.getpeercert(binary_form=True):
                state[PEER_FINGERPRINT] = peer_fingerprint(ssl_object)
            self.app_state = state  # this connection's own copy
            super().connection_made(transport)

    config.http = PeerProtocol


def asgi_peer_fingerprint(scope: Mapping[str, Any]) -> str:
    """The client certificate fingerprint of the connection an ASGI request came on (a
    server set up with :func:`expose_peer_fingerprints`)."""
    found = (scope.get("state") or {}).get(PEER_FINGERPRINT)
    if not isinstance(found, str):
        raise MtlsError("the request came without a client certificate: mutual TLS is required")
    return found
