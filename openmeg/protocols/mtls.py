"""Mutual TLS 1.3 between the premises' provisioning system and the service providers
(Y.2071 III.3): a provider certificate authority the site trusts, certificates it issues and
revokes (a CRL), and TLS contexts that require TLS 1.3, a client certificate and a CRL check.
The CA key lives in the keystore (``provisioning/<name>/ca-key``); a key given to ``ssl`` is
encrypted under a one-time password in an anonymous memory file (docs/provisioning-security.md)."""

from __future__ import annotations

import contextlib
import hashlib
import ipaddress
import logging
import os
import re
import secrets
import ssl
import tempfile
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import uvicorn
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from uvicorn.config import HTTP_PROTOCOLS
from uvicorn.importer import import_from_string

from openmeg.core.clock import Clock, WallClock
from openmeg.core.errors import OpenMegError
from openmeg.core.keystore import Keystore
from openmeg.core.private_files import write_private
from openmeg.core.secure_memory import SecretBytes

__all__ = [
    "PEER_FINGERPRINT",
    "HandshakeRefusal",
    "MtlsError",
    "ProviderAuthority",
    "asgi_peer_fingerprint",
    "client_context",
    "expose_peer_fingerprints",
    "fingerprint",
    "peer_fingerprint",
    "refusal",
    "server_context",
    "watch_handshakes",
]

_NAME = re.compile(r"[a-z0-9][a-z0-9-]{0,62}")
_HOST = re.compile(
    r"(?=.{1,253}$)([A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)*"
    r"[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
)
_PEM_BLOCK = re.compile(rb"-----BEGIN ([A-Z0-9 ]+)-----.+?-----END \1-----\r?\n?", re.S)
CA_DAYS, LEAF_DAYS, CRL_DAYS = 3650, 397, 7
log = logging.getLogger("openmeg.mtls")
PEER_FINGERPRINT = "openmeg.tls_peer_fingerprint"  # its key in an ASGI request's scope["state"]


class MtlsError(OpenMegError):
    """A certificate, key or CRL unusable for mutual TLS, or a peer without a certificate."""


def ca_key_name(name: str) -> str:
    """The keystore name of the provider CA ``name``'s private key."""
    return f"provisioning/{name}/ca-key"


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def _usage(*, ca: bool) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=not ca,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=ca,
        crl_sign=ca,
        encipher_only=False,
        decipher_only=False,
    )


class ProviderAuthority:
    """The CA a site trusts for its service providers and its own provisioning client: its
    certificate ``<out>/<name>-ca.pem``, its CRL ``<out>/<name>-crl.pem``, its key in the
    keystore."""

    def __init__(
        self,
        *,
        name: str,
        keystore: Keystore,
        out: Path,
        certificate: x509.Certificate,
        revoked: dict[int, datetime],
        clock: Clock,
    ) -> None:
        self.name, self.keystore, self.out, self._clock = name, keystore, Path(out), clock
        self.certificate, self._revoked = certificate, revoked

    @property
    def cert_path(self) -> Path:
        return self.out / f"{self.name}-ca.pem"

    @property
    def crl_path(self) -> Path:
        return self.out / f"{self.name}-crl.pem"

    @property
    def cert_pem(self) -> bytes:
        """The CA certificate (PEM), the trust anchor both sides load."""
        return self.certificate.public_bytes(serialization.Encoding.PEM)

    @classmethod
    def create(
        cls,
        name: str,
        keystore: Keystore,
        out: Path,
        *,
        clock: Clock | None = None,
        force: bool = False,
    ) -> ProviderAuthority:
        """A new CA ``name``: its key into the keystore, its certificate and CRL into ``out``."""
        if not isinstance(name, str) or not _NAME.fullmatch(name):
            raise MtlsError(
                f"a CA's name is 1 to 63 of a-z 0-9 - (not starting with -), not {name!r}"
            )
        clock = clock or WallClock()
        out = Path(out)
        if not force and (
            keystore.get(ca_key_name(name)) is not None or (out / f"{name}-ca.pem").exists()
        ):
            raise FileExistsError(
                f"the provider CA {name!r} exists already: use force=True to replace it"
            )
        key = ec.generate_private_key(ec.SECP256R1())
        subject = x509.Name(
            [
                x509.NameAttribute(NameOID.ORGANIZATION_NAME, "openmeg service provisioning"),
                x509.NameAttribute(NameOID.COMMON_NAME, f"openmeg {name} CA"),
            ]
        )
        t0 = clock.now() - timedelta(minutes=5)
        cert = (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(t0)
            .not_valid_after(t0 + timedelta(days=CA_DAYS))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(_usage(ca=True), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), False)
            .sign(key, hashes.SHA256())
        )
        keystore.put(ca_key_name(name), _key_pem(key))
        out.mkdir(parents=True, exist_ok=True)
        authority = cls(
            name=name, keystore=keystore, out=out, certificate=cert, revoked={}, clock=clock
        )
        authority.cert_path.write_bytes(authority.cert_pem)
        authority.crl_path.write_bytes(authority.crl_pem())
        return authority

    @classmethod
    def load(
        cls, name: str, keystore: Keystore, out: Path, *, clock: Clock | None = None
    ) -> ProviderAuthority:
        """The CA ``name`` made by :meth:`create`, with the revocations of its CRL file."""
        out = Path(out)
        try:
            cert = x509.load_pem_x509_certificate((out / f"{name}-ca.pem").read_bytes())
            crl = x509.load_pem_x509_crl((out / f"{name}-crl.pem").read_bytes())
        except (OSError, ValueError) as err:
            raise MtlsError(
                f"the provider CA {name!r} in {out} cannot be read ({err}): create it"
            ) from err
        if not crl.is_signature_valid(cert.public_key()):  # type: ignore[arg-type]
            raise MtlsError(f"the CRL of {name!r} in {out} is not signed by its CA: restore it")
        revoked = {r.serial_number: r.revocation_date_utc for r in crl}
        return cls(
            name=name,
            keystore=keystore,
            out=out,
            certificate=cert,
            revoked=revoked,
            clock=clock or WallClock(),
        )

    def _ca_key(self) -> ec.EllipticCurvePrivateKey:
        pem = self.keystore.get(ca_key_name(self.name))
        if pem is None:
            raise MtlsError(
                f"the keystore {self.keystore.path} holds no key of the CA {self.name!r}"
            )
        key = serialization.load_pem_private_key(pem, None)
        assert isinstance(key, ec.EllipticCurvePrivateKey)
        return key

    def issue(
        self,
        common_name: str,
        *,
        client: bool,
        not_after: datetime | None = None,
        hosts: Sequence[str] = ("localhost", "127.0.0.1"),
    ) -> tuple[bytes, bytes]:
        """A certificate (PEM) for ``common_name`` and its private key (PEM, keep it in the
        keystore): a client certificate, or a server one naming ``hosts``."""
        if (
            not isinstance(common_name, str)
            or not 0 < len(common_name) <= 64
            or not common_name.isprintable()
        ):
            raise MtlsError(f"a common name has 1 to 64 printable characters, not {common_name!r}")
        if not_after is not None and (
            not isinstance(not_after, datetime) or not_after.tzinfo is None
        ):
            raise MtlsError("not_after is an aware datetime (UTC)")
        names = [_host(h) for h in hosts]
        now = self._clock.now()
        end = not_after or now + timedelta(days=LEAF_DAYS)
        start = min(now - timedelta(minutes=5), end - timedelta(days=1))
        ca_key, key = self._ca_key(), ec.generate_private_key(ec.SECP256R1())
        usage = ExtendedKeyUsageOID.CLIENT_AUTH if client else ExtendedKeyUsageOID.SERVER_AUTH
        builder = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)]))
            .issuer_name(self.certificate.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(start)
            .not_valid_after(end)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(_usage(ca=False), critical=True)
            .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), False)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), False
            )
        )
        if not client:
            builder = builder.add_extension(x509.SubjectAlternativeName(names), False)
        cert = builder.sign(ca_key, hashes.SHA256())
        return cert.public_bytes(serialization.Encoding.PEM), _key_pem(key)

    def revoke(self, cert_pem: bytes) -> None:
        """Revoke a certificate this CA issued; its CRL file is written again at once."""
        cert = _certificate(cert_pem)
        try:
            cert.verify_directly_issued_by(self.certificate)
        except (ValueError, TypeError, InvalidSignature) as err:
            raise MtlsError(
                f"the certificate {cert.subject.rfc4514_string()} is not one this CA issued"
            ) from err
        self._revoked.setdefault(cert.serial_number, self._clock.now())
        write_private(self.crl_path, self.crl_pem())
        self.crl_path.chmod(0o644)  # public, as the CA certificate

    def crl_pem(self) -> bytes:
        """The CA's certificate revocation list now (PEM), valid for a week."""
        key, now = self._ca_key(), self._clock.now()
        builder = (
            x509.CertificateRevocationListBuilder()
            .issuer_name(self.certificate.subject)
            .last_update(now - timedelta(minutes=5))
            .next_update(now + timedelta(days=CRL_DAYS))
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(key.public_key()), False
            )
            .add_extension(x509.CRLNumber(int(now.timestamp() * 1000)), False)
        )
        for serial, when in sorted(self._revoked.items()):
            entry = x509.RevokedCertificateBuilder().serial_number(serial).revocation_date(when)
            builder = builder.add_revoked_certificate(entry.build())
        return builder.sign(key, hashes.SHA256()).public_bytes(serialization.Encoding.PEM)


def _host(host: str) -> x509.GeneralName:
    try:
        return x509.IPAddress(ipaddress.ip_address(host))
    except ValueError:
        if isinstance(host, str) and _HOST.fullmatch(host):
            return x509.DNSName(host)
    raise MtlsError(f"a server's host is an IP address or a DNS name, not {host!r}")


def _certificate(pem: bytes | str) -> x509.Certificate:
    data = pem.encode() if isinstance(pem, str) else pem
    try:
        return x509.load_pem_x509_certificate(data)
    except (ValueError, TypeError) as err:
        raise MtlsError("the certificate is not one PEM X.509 certificate") from err


def fingerprint(cert: bytes | str | x509.Certificate) -> str:
    """The certificate's identity: the SHA-256 of its DER form, 64 lower-case hex digits (as
    IEEE 2030.5's LFDI before truncation); ``cert`` is PEM, DER or a parsed certificate."""
    if isinstance(cert, x509.Certificate):
        parsed = cert
    elif isinstance(cert, str) or cert.lstrip().startswith(b"-----BEGIN"):
        parsed = _certificate(cert)
    else:
        try:
            parsed = x509.load_der_x509_certificate(bytes(cert))
        except (ValueError, TypeError) as err:
            raise MtlsError("the certificate is neither PEM nor DER X.509") from err
    return hashlib.sha256(parsed.public_bytes(serialization.Encoding.DER)).hexdigest()


def peer_fingerprint(ssl_object: ssl.SSLObject | ssl.SSLSocket | None) -> str:
    """The :func:`fingerprint` of the certificate the peer of a TLS connection presented
    (``ssl_object`` as asyncio's ``get_extra_info("ssl_object")`` gives it)."""
    der = ssl_object.getpeercert(binary_form=True) if ssl_object is not None else None
    if not isinstance(der, bytes) or not der:
        raise MtlsError("the peer presented no certificate: mutual TLS is required")
    return fingerprint(der)


def _blocks(pem: bytes | str, kind: bytes, what: str) -> list[bytes]:
    data = pem.encode() if isinstance(pem, str) else bytes(pem)
    found = [m.group(0) for m in _PEM_BLOCK.finditer(data) if m.group(1) == kind]
    if not found:
        raise MtlsError(f"{what} holds no PEM {kind.decode()}")
    return found


@contextlib.contextmanager
def _memory_file(data: bytes) -> Iterator[str]:
    """A path to ``data`` in an anonymous memory file (Linux), else a private temporary file
    in /dev/shm or the temporary folder; gone when the block ends."""
    if hasattr(os, "memfd_create") and Path("/proc/self/fd").is_dir():
        fd = os.memfd_create("openmeg-tls", os.MFD_CLOEXEC)
        try:
            os.write(fd, data)
            yield f"/proc/self/fd/{fd}"
        finally:
            os.close(fd)
        return
    shm = "/dev/shm" if os.access("/dev/shm", os.W_OK) else None
    fd, name = tempfile.mkstemp(prefix="openmeg-key-", dir=shm)  # mode 0600
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        yield name
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(name)


def _trust(ctx: ssl.SSLContext, trust_pem: bytes | str, crl_pem: bytes | str) -> None:
    ctx.minimum_version = ssl.TLSVersion.TLSv1_3
    ctx.options |= ssl.OP_NO_COMPRESSION | ssl.OP_NO_RENEGOTIATION
    ctx.verify_mode = ssl.CERT_REQUIRED
    ctx.set_ciphers("ECDHE+AESGCM:ECDHE+CHACHA20:!aNULL")  # TLS 1.2's, should it be allowed
    anchors = _blocks(trust_pem, b"CERTIFICATE", "the trust")
    crls = _blocks(crl_pem, b"X509 CRL", "the CRL")
    for block in crls:
        try:
            x509.load_pem_x509_crl(block)
        except ValueError as err:
            raise MtlsError("the CRL is not a PEM X.509 CRL") from err
    try:
        ctx.load_verify_locations(cadata=b"".join(anchors).decode("ascii"))
        with _memory_file(b"".join(crls)) as path:  # public data; ssl loads CRLs from files only
            ctx.load_verify_locations(cafile=path)
    except (ssl.SSLError, UnicodeDecodeError) as err:
        raise MtlsError(f"the trust or the CRL cannot be loaded: {err}") from err
    ctx.verify_flags |= ssl.VERIFY_CRL_CHECK_LEAF | ssl.VERIFY_X509_STRICT


def _chain(ctx: ssl.SSLContext, cert_pem: bytes | str, key_pem: bytes | SecretBytes) -> None:
    """Load the certificate and its key: the key re-encrypted under a one-time password, in
    a memory file only for the moment ``ssl`` reads it."""
    cert = _certificate(cert_pem)
    raw = bytes(key_pem.view()) if isinstance(key_pem, SecretBytes) else bytes(key_pem)
    try:
        key = serialization.load_pem_private_key(raw, None)
    except (ValueError, TypeError) as err:
        raise MtlsError("the private key is not an unencrypted PEM key") from err
    finally:
        del raw
    if key.public_key() != cert.public_key():
        raise MtlsError(f"the private key is not the key of {cert.subject.rfc4514_string()}")
    password = secrets.token_hex(32).encode()
    sealed = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(password),  # PBES2: PBKDF2-SHA256, AES-256-CBC
    )
    with _memory_file(cert.public_bytes(serialization.Encoding.PEM) + sealed) as path:
        try:
            ctx.load_cert_chain(certfile=path, password=password)
        except ssl.SSLError as err:
            raise MtlsError(f"the certificate and key cannot be loaded: {err}") from err


def server_context(
    cert_pem: bytes | str,
    key_pem: bytes | SecretBytes,
    trust_pem: bytes | str,
    crl_pem: bytes | str,
) -> ssl.SSLContext:
    """A TLS 1.3 server context that requires a client certificate from ``trust_pem``'s CAs,
    not revoked by ``crl_pem`` (one CRL per trusted CA), and issues no session tickets."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    _trust(ctx, trust_pem, crl_pem)
    ctx.num_tickets = 0  # no resumption: every connection's certificate is checked afresh
    _chain(ctx, cert_pem, key_pem)
    return ctx


def client_context(
    cert_pem: bytes | str,
    key_pem: bytes | SecretBytes,
    trust_pem: bytes | str,
    crl_pem: bytes | str,
) -> ssl.SSLContext:
    """A TLS 1.3 client context presenting ``cert_pem`` and checking the server's
    certificate (and its host name) against ``trust_pem`` and ``crl_pem``."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    _trust(ctx, trust_pem, crl_pem)
    ctx.check_hostname = True
    _chain(ctx, cert_pem, key_pem)
    return ctx


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
