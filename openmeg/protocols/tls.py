"""TLS for openmeg's servers: a site certificate authority and a server certificate it signs
(Y.2071 clause 11: cryptography for integrity and confidentiality)."""

from __future__ import annotations

import ipaddress
import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID


def _key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def _write_key(path: Path, key: ec.EllipticCurvePrivateKey) -> None:
    data = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)  # readable by the owner only
    with os.fdopen(fd, "wb") as f:
        f.write(data)


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
    hosts: list[str] | None = None,
    force: bool = False,
    now: datetime | None = None,
) -> list[Path]:
    """Write ``ca.pem``, ``ca.key``, ``server.pem``, ``server.key`` into ``out``; the server
    certificate names localhost, 127.0.0.1 and ``hosts``."""
    paths = [out / n for n in ("ca.pem", "ca.key", "server.pem", "server.key")]
    if not force and any(p.exists() for p in paths):
        raise FileExistsError(f"certificates exist in {out}: use --force to replace them")
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
    paths[0].write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    _write_key(paths[1], ca_key)
    paths[2].write_bytes(server.public_bytes(serialization.Encoding.PEM))
    _write_key(paths[3], server_key)
    return paths
