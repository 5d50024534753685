"""A party's identity for mutual TLS 1.3 with the provider CA: a server and a client certificate
of one common name, their keys in the keystore (``provisioning/<name>/server-key`` and
``client-key``), the CA it trusts and that CA's current CRL."""

from __future__ import annotations

import ssl
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from openmeg.core.keystore import Keystore
from openmeg.core.secure_memory import SecretBytes
from openmeg.protocols.mtls import client_context, fingerprint, server_context
from openmeg.protocols.provider_ca import ProviderAuthority


def key_name(name: str, role: str) -> str:
    """The keystore name of ``name``'s ``role`` (server or client) key."""
    return f"provisioning/{name}/{role}-key"


@dataclass(kw_only=True)
class TlsIdentity:
    """``name``'s certificates (PEM), the CA it trusts and a source of that CA's current CRL
    (its contexts are made again when the CRL it gives changes)."""

    name: str
    server_cert: bytes
    client_cert: bytes
    trust: bytes
    crl: Callable[[], bytes]
    keystore: Keystore
    _made: dict[str, tuple[bytes, ssl.SSLContext]] = field(default_factory=dict, repr=False)

    @classmethod
    def issue(
        cls, authority: ProviderAuthority, name: str, keystore: Keystore, out: Path | None = None
    ) -> TlsIdentity:
        """Certificates for ``name`` from ``authority``, their keys kept in ``keystore``, the
        certificates also written to ``out`` (``<name>-server.pem``, ``<name>-client.pem``)."""
        certs = {}
        for role in ("server", "client"):
            cert, key = authority.issue(name, client=role == "client")
            keystore.put(key_name(name, role), key)
            certs[role] = cert
            if out is not None:
                out.mkdir(parents=True, exist_ok=True)
                (out / f"{name}-{role}.pem").write_bytes(cert)
        return cls(
            name=name,
            server_cert=certs["server"],
            client_cert=certs["client"],
            trust=authority.cert_pem,
            crl=authority.crl_path.read_bytes,  # written again at once on a revocation
            keystore=keystore,
        )

    @classmethod
    def load(cls, name: str, folder: Path, ca: str, keystore: Keystore) -> TlsIdentity:
        """``name``'s identity from the certificates :meth:`issue` wrote to ``folder`` and the
        CA ``ca``'s certificate and CRL there; ``FileNotFoundError`` naming what is missing."""
        paths = [folder / f"{name}-server.pem", folder / f"{name}-client.pem"]
        paths += [folder / f"{ca}-ca.pem", folder / f"{ca}-crl.pem"]
        missing = [str(p) for p in paths if not p.is_file()]
        if missing:
            raise FileNotFoundError(
                f"no {', '.join(missing)}: run openmeg services init to make them"
            )
        return cls(
            name=name,
            server_cert=paths[0].read_bytes(),
            client_cert=paths[1].read_bytes(),
            trust=paths[2].read_bytes(),
            crl=paths[3].read_bytes,
            keystore=keystore,
        )

    @property
    def client_fingerprint(self) -> str:
        """The identity the client certificate proves (SHA-256 of its DER form)."""
        return fingerprint(self.client_cert)

    @property
    def server_fingerprint(self) -> str:
        """The identity the server certificate proves."""
        return fingerprint(self.server_cert)

    def context(self, role: str) -> ssl.SSLContext:
        """The ``role`` (server or client) context, made again when the CRL changes."""
        crl = self.crl()
        held = self._made.get(role)
        if held is not None and held[0] == crl:
            return held[1]
        pem = self.keystore.get(key_name(self.name, role))
        if pem is None:
            raise FileNotFoundError(
                f"the keystore {self.keystore.path} holds no {role} key of {self.name}: "
                "issue its certificates again"
            )
        with SecretBytes(bytearray(pem)) as key:
            make = server_context if role == "server" else client_context
            cert = self.server_cert if role == "server" else self.client_cert
            ctx = make(cert, key, self.trust, crl)
        self._made[role] = (crl, ctx)
        return ctx

    def server_context(self) -> ssl.SSLContext:
        """The server context (for :class:`~openmeg.provider.advert_http.MtlsServer`)."""
        return self.context("server")

    def client_context(self) -> ssl.SSLContext:
        """The client context."""
        return self.context("client")
