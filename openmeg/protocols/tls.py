"""TLS for openmeg's servers: a site certificate authority and a server certificate it signs
(Y.2071 clause 11: cryptography for integrity and confidentiality). The certificates are files;
their private keys live in the keystore (``ca/key``, ``tls/server-key``), and a server loads its
key from there through a private temporary file removed at once (docs/security.md)."""

from __future__ import annotations

import contextlib
import ipaddress
import logging
import os
import ssl
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from openmeg.core.keystore import Keystore
from openmeg.core.private_files import write_private

CA_KEY, SERVER_KEY = "ca/key", "tls/server-key"  # their names in the keystore
log = logging.getLogger("openmeg.tls")


def _key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def _pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _name(common: str, site: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, f"openmeg site {site}"),
            x509.NameAttribute(NameOID.COMMON_NAME, common),
        ]
    )


def init_site_certificates(
    out: Path,
    site: str,
    *,
    keystore: Keystore,
    hosts: list[str] | None = None,
    force: bool = False,
    now: datetime | None = None,
) -> list[Path]:
    """Write ``ca.pem`` and ``server.pem`` into ``out`` and keep their keys in ``keystore``;
    the server certificate names localhost, 127.0.0.1 and ``hosts``."""
    paths = [out / n for n in ("ca.pem", "server.pem")]
    if not force and any(p.exists() for p in paths):
        raise FileExistsError(f"certificates exist in {out}: use --force to replace them")
    if not force and keystore.get(CA_KEY) is not None:
        raise FileExistsError(
            f"the keystore {keystore.path} holds a site CA key already: use --force to replace it"
        )
    out.mkdir(parents=True, exist_ok=True)
    t0 = (now or datetime.now(UTC)) - timedelta(minutes=5)
    ca_key, server_key = _key(), _key()
    ca_name = _name(f"openmeg {site} CA", site)
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(t0)
        .not_valid_after(t0 + timedelta(days=3650))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=False,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), False)
        .sign(ca_key, hashes.SHA256())
    )
    names: list[x509.GeneralName] = [x509.DNSName("localhost")]
    for h in ["127.0.0.1", *(hosts or [])]:
        try:
            names.append(x509.IPAddress(ipaddress.ip_address(h)))
        except ValueError:
            names.append(x509.DNSName(h))
    server = (
        x509.CertificateBuilder()
        .subject_name(_name(f"openmeg {site} API", site))
        .issuer_name(ca_name)
        .public_key(server_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(t0)
        .not_valid_after(t0 + timedelta(days=825))
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), False
        )
        .sign(ca_key, hashes.SHA256())
    )
    keystore.put(CA_KEY, _pem(ca_key))
    keystore.put(SERVER_KEY, _pem(server_key))
    paths[0].write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    paths[1].write_bytes(server.public_bytes(serialization.Encoding.PEM))
    return paths


def adopt_key_files(folder: Path, keystore: Keystore) -> list[Path]:
    """Move ``ca.key`` and ``server.key`` left in ``folder`` by an older openmeg into the
    keystore (unless it has them already) and delete the files; the files moved."""
    moved = []
    for name, secret in (("ca.key", CA_KEY), ("server.key", SERVER_KEY)):
        path = folder / name
        if not path.exists():
            continue
        if keystore.get(secret) is None:
            keystore.put(secret, path.read_bytes())
        path.unlink()
        moved.append(path)
        log.warning("the key file %s is now in the keystore %s (file removed)", path, keystore.path)
    return moved


def _private_folder() -> str | None:
    """A memory file system for the moment a key is a file, when there is one (Linux)."""
    shm = Path("/dev/shm")
    return str(shm) if shm.is_dir() and os.access(shm, os.W_OK) else None


def server_context(certfile: Path, keystore: Keystore) -> ssl.SSLContext:
    """A TLS server context with the certificate ``certfile`` and its key from the keystore;
    the key is a file (mode 0600, in memory where possible) only while it is loaded."""
    key = keystore.get(SERVER_KEY)
    if key is None:
        raise FileNotFoundError(
            f"the keystore {keystore.path} holds no server key: run openmeg certs init"
        )
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    fd, name = tempfile.mkstemp(prefix="openmeg-key-", dir=_private_folder())  # mode 0600
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(key)
        ctx.load_cert_chain(certfile=str(certfile), keyfile=name)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(name)
    return ctx


def write_server_key(keystore: Keystore, path: Path) -> None:
    """The server key as a file (mode 0600) for a server that only loads key files (such as a
    Mosquitto listener on 8883): the one place a key leaves the keystore (docs/security.md)."""
    key = keystore.get(SERVER_KEY)
    if key is None:
        raise FileNotFoundError(
            f"the keystore {keystore.path} holds no server key: run openmeg certs init"
        )
    write_private(path, key)
