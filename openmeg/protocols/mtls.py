"""Mutual TLS 1.3 between the premises' provisioning system and the service providers
(Y.2071 III.3): TLS contexts that require TLS 1.3, a client certificate and a CRL check, and
each certificate's identity (the SHA-256 fingerprint of its DER form). A key given to ``ssl`` is
encrypted under a one-time password in an anonymous memory file (docs/provisioning-security.md);
the provider CA that issues the certificates is ``openmeg.protocols.provider_ca``."""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import secrets
import ssl
import tempfile
from collections.abc import Iterator
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from openmeg.core.errors import OpenMegError
from openmeg.core.secure_memory import SecretBytes

__all__ = [
    "MtlsError",
    "client_context",
    "fingerprint",
    "load_certificate",
    "peer_fingerprint",
    "server_context",
]

_PEM_BLOCK = re.compile(rb"-----BEGIN ([A-Z0-9 ]+)-----.+?-----END \1-----\r?\n?", re.S)


class MtlsError(OpenMegError):
    """A certificate, key or CRL unusable for mutual TLS, or a peer without a certificate."""


def load_certificate(pem: bytes | str) -> x509.Certificate:
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
        parsed = load_certificate(cert)
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
    cert = load_certificate(cert_pem)
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
