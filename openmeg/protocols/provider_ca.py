"""The provider certificate authority that a site trusts for its service providers and its own
provisioning system (Y.2071 III.3): it issues client and server certificates, revokes them, and
signs the CRL that every mutual-TLS context checks. Its key lives in the keystore
(``provisioning/<name>/ca-key``; docs/provisioning-security.md)."""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Sequence
from datetime import datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from openmeg.core.clock import Clock, WallClock
from openmeg.core.keystore import Keystore
from openmeg.core.private_files import write_private
from openmeg.protocols.mtls import MtlsError, load_certificate

__all__ = ["ProviderAuthority", "ca_key_name"]

CA_DAYS, LEAF_DAYS, CRL_DAYS = 3650, 397, 7

_NAME = re.compile(r"[a-z0-9][a-z0-9-]{0,62}")
_HOST = re.compile(
    r"(?=.{1,253}$)([A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)*"
    r"[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
)


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
        cert = load_certificate(cert_pem)
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
