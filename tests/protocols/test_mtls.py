"""Mutual TLS 1.3 with the provider CA over real sockets on 127.0.0.1: the handshake that
works, and each one refused (by the server and by the client) failing at once, never hanging."""

from __future__ import annotations

import asyncio
import contextlib
import queue
import socket
import ssl
import subprocess
import tempfile
import threading
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from fastapi import FastAPI, Request

from openmeg.core.secure_memory import SecretBytes
from openmeg.protocols import mtls
from openmeg.protocols.http_server import HttpServer
from openmeg.protocols.mtls import (
    MtlsError,
    client_context,
    fingerprint,
    peer_fingerprint,
    server_context,
)
from openmeg.protocols.mtls_refusals import (
    HandshakeRefusal,
    asgi_peer_fingerprint,
    expose_peer_fingerprints,
    refusal,
    watch_handshakes,
)
from openmeg.protocols.provider_ca import ProviderAuthority
from tests.keys import test_keystore
from tests.services import free_port

TIMEOUT_S = 5.0


@dataclass(frozen=True, kw_only=True)
class Pki:
    ca: ProviderAuthority
    other: ProviderAuthority  # a CA the site does not trust
    server: tuple[bytes, bytes]
    client: tuple[bytes, bytes]

    def server_ctx(self, cert: tuple[bytes, bytes] | None = None) -> ssl.SSLContext:
        return server_context(*(cert or self.server), self.ca.cert_pem, self.ca.crl_pem())

    def client_ctx(self, cert: tuple[bytes, bytes] | None = None) -> ssl.SSLContext:
        return client_context(*(cert or self.client), self.ca.cert_pem, self.ca.crl_pem())


@pytest.fixture
def pki(tmp_path: Path) -> Pki:
    keys = test_keystore(tmp_path / "site.keystore")
    ca = ProviderAuthority.create("providers", keys, tmp_path / "ca")
    other = ProviderAuthority.create("elsewhere", keys, tmp_path / "other")
    return Pki(
        ca=ca,
        other=other,
        server=ca.issue("comfort-optimiser.example", client=False),
        client=ca.issue("premises office", client=True),
    )


@contextlib.contextmanager
def serving(ctx: ssl.SSLContext) -> Iterator[tuple[int, queue.Queue[object]]]:
    """A server on 127.0.0.1 for one connection: it records the peer's fingerprint, or the
    error its handshake failed with, and echoes four bytes."""
    outcome: queue.Queue[object] = queue.Queue()
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(TIMEOUT_S)

    def serve() -> None:
        try:
            conn, _ = listener.accept()
        except OSError as err:
            outcome.put(err)
            return
        conn.settimeout(TIMEOUT_S)
        try:
            tls = ctx.wrap_socket(conn, server_side=True)
        except (ssl.SSLError, OSError) as err:
            conn.close()
            outcome.put(err)
            return
        with tls:
            outcome.put(peer_fingerprint(tls))
            with contextlib.suppress(OSError):
                tls.sendall(tls.recv(4))

    thread = threading.Thread(target=serve, name="mtls-test-server")
    thread.start()
    try:
        yield listener.getsockname()[1], outcome
    finally:
        thread.join(TIMEOUT_S + 1)
        listener.close()
        assert not thread.is_alive()


def talk(port: int, ctx: ssl.SSLContext, host: str = "127.0.0.1") -> tuple[str, bytes]:
    """Connect, send b"ping", read the echo: the peer's fingerprint and what came back."""
    with (
        socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT_S) as raw,
        ctx.wrap_socket(raw, server_hostname=host) as tls,
    ):
        assert tls.version() == "TLSv1.3"
        tls.sendall(b"ping")
        return peer_fingerprint(tls), tls.recv(4)


def refused(port: int, ctx: ssl.SSLContext, host: str = "127.0.0.1") -> BaseException | None:
    """The error the client met (None for a bare close); fails if it got an echo back."""
    try:
        _, echo = talk(port, ctx, host)
    except (ssl.SSLError, OSError) as err:
        assert not isinstance(err, TimeoutError), "the refusal hung instead of failing"
        return err
    assert echo == b"", "a refused peer got its echo back"
    return None


def _server_error(outcome: queue.Queue[object]) -> BaseException:
    got = outcome.get(timeout=TIMEOUT_S)
    assert isinstance(got, ssl.SSLError), f"the server accepted it: {got!r}"
    return got


def test_mutual_tls_1_3_works_and_each_side_knows_the_other_by_fingerprint(pki: Pki) -> None:
    with serving(pki.server_ctx()) as (port, outcome):
        seen, echo = talk(port, pki.client_ctx())
    assert echo == b"ping"
    assert seen == fingerprint(pki.server[0])
    assert pki.server_ctx().num_tickets == 0  # no resumption without a fresh certificate check
    assert outcome.get(timeout=TIMEOUT_S) == fingerprint(pki.client[0])


def test_the_key_can_come_from_the_secure_memory_area(pki: Pki) -> None:
    cert, key = pki.client
    with SecretBytes(bytearray(key)) as secret:
        ctx = client_context(cert, secret, pki.ca.cert_pem, pki.ca.crl_pem())
    with serving(pki.server_ctx()) as (port, outcome):
        assert talk(port, ctx)[1] == b"ping"
    assert outcome.get(timeout=TIMEOUT_S) == fingerprint(cert)


def _old_client(version: ssl.TLSVersion, ciphers: str, pki: Pki) -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # TLSv1_1 is, rightly
        ctx.minimum_version = ctx.maximum_version = version
    ctx.set_ciphers(ciphers)
    ctx.load_verify_locations(cadata=pki.ca.cert_pem.decode())
    cert, key = pki.client
    with tempfile.TemporaryDirectory() as folder:  # a test client's throwaway key
        (Path(folder) / "c.pem").write_bytes(cert + key)
        ctx.load_cert_chain(Path(folder) / "c.pem")
    return ctx


def _bare_client(pki: Pki) -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.load_verify_locations(cadata=pki.ca.cert_pem.decode())
    return ctx


CLIENTS: dict[str, tuple[Callable[[Pki], ssl.SSLContext], str]] = {
    "no client certificate": (_bare_client, "PEER_DID_NOT_RETURN_A_CERTIFICATE"),
    "a certificate from another CA": (
        lambda p: p.client_ctx(p.other.issue("premises office", client=True)),
        "unable to get local issuer certificate",
    ),
    "an expired certificate": (
        lambda p: p.client_ctx(
            p.ca.issue(
                "premises office", client=True, not_after=datetime.now(UTC) - timedelta(days=1)
            )
        ),
        "certificate has expired",
    ),
    "a server certificate as a client's": (
        lambda p: p.client_ctx(p.ca.issue("premises office", client=False)),
        "unsuitable certificate purpose",
    ),
    "a TLS 1.1 client": (
        lambda p: _old_client(ssl.TLSVersion.TLSv1_1, "DEFAULT:@SECLEVEL=0", p),
        "UNSUPPORTED_PROTOCOL",
    ),
    "a TLS 1.2 client offering AES128-SHA alone": (
        lambda p: _old_client(ssl.TLSVersion.TLSv1_2, "AES128-SHA", p),
        "UNSUPPORTED_PROTOCOL",
    ),
}


@pytest.mark.parametrize("case", list(CLIENTS))
def test_the_server_refuses(case: str, pki: Pki) -> None:
    make, reason = CLIENTS[case]
    client = make(pki)
    with serving(pki.server_ctx()) as (port, outcome):
        refused(port, client)
        err = _server_error(outcome)
    assert reason in str(err)


def test_the_server_refuses_a_revoked_certificate_once_the_crl_names_it(pki: Pki) -> None:
    with serving(pki.server_ctx()) as (port, outcome):
        talk(port, pki.client_ctx())
    assert outcome.get(timeout=TIMEOUT_S) == fingerprint(pki.client[0])
    pki.ca.revoke(pki.client[0])
    with serving(pki.server_ctx()) as (port, outcome):
        refused(port, pki.client_ctx())
        err = _server_error(outcome)
    assert isinstance(err, ssl.SSLCertVerificationError) and err.verify_code == 23
    assert err.verify_message == "certificate revoked"
    fresh = pki.ca.issue("premises office", client=True)  # a new certificate works again
    with serving(pki.server_ctx()) as (port, outcome):
        assert talk(port, pki.client_ctx(fresh))[1] == b"ping"
    assert outcome.get(timeout=TIMEOUT_S) == fingerprint(fresh[0])


def test_weak_suites_are_refused_even_if_tls_1_2_were_allowed(pki: Pki) -> None:
    server = pki.server_ctx()
    for name in (c["name"] for c in server.get_ciphers()):
        assert name.startswith(("TLS_AES_", "TLS_CHACHA20_", "ECDHE-")), name
        assert "GCM" in name or "CHACHA20" in name, name
    server.minimum_version = ssl.TLSVersion.TLSv1_2  # a misconfiguration, for the test
    with serving(server) as (port, outcome):
        refused(port, _old_client(ssl.TLSVersion.TLSv1_2, "AES128-SHA", pki))
        assert "NO_SHARED_CIPHER" in str(_server_error(outcome))


SERVERS: dict[str, tuple[Callable[[Pki], tuple[bytes, bytes]], str, str]] = {
    "a server certificate from another CA": (
        lambda p: p.other.issue("comfort-optimiser.example", client=False),
        "127.0.0.1",
        "self-signed certificate in certificate chain",  # the chain ends at a CA not trusted
    ),
    "a server certificate for another host": (
        lambda p: p.ca.issue("elsewhere", client=False, hosts=["provider.example"]),
        "127.0.0.1",
        "IP address mismatch",
    ),
    "a client certificate as a server's": (
        lambda p: p.ca.issue("comfort-optimiser.example", client=True),
        "127.0.0.1",
        "unsuitable certificate purpose",
    ),
}


@pytest.mark.parametrize("case", list(SERVERS))
def test_the_client_refuses(case: str, pki: Pki) -> None:
    make, host, reason = SERVERS[case]
    cert = make(pki)
    server = server_context(*cert, pki.ca.cert_pem + pki.other.cert_pem, _crls(pki))
    with serving(server) as (port, outcome):
        err = refused(port, pki.client_ctx(), host)
        outcome.get(timeout=TIMEOUT_S)  # the server's side of it, whatever it saw
    assert isinstance(err, ssl.SSLCertVerificationError) and reason in str(err)


def _crls(pki: Pki) -> bytes:
    return pki.ca.crl_pem() + pki.other.crl_pem()


def test_the_client_refuses_a_revoked_server_and_a_tls_1_2_one(pki: Pki) -> None:
    pki.ca.revoke(pki.server[0])
    with serving(pki.server_ctx()) as (port, outcome):
        err = refused(port, pki.client_ctx())
        outcome.get(timeout=TIMEOUT_S)
    assert isinstance(err, ssl.SSLCertVerificationError) and err.verify_code == 23
    old = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    old.maximum_version = ssl.TLSVersion.TLSv1_2
    cert, key = pki.ca.issue("comfort-optimiser.example", client=False)
    with tempfile.TemporaryDirectory() as folder:  # a test server's throwaway key
        (Path(folder) / "s.pem").write_bytes(cert + key)
        old.load_cert_chain(Path(folder) / "s.pem")
    with serving(old) as (port, outcome):
        err = refused(port, pki.client_ctx())
        outcome.get(timeout=TIMEOUT_S)
    assert isinstance(err, ssl.SSLError) and "PROTOCOL_VERSION" in str(err)


def test_the_fingerprint_is_the_sha256_of_the_der_certificate(pki: Pki, tmp_path: Path) -> None:
    pem = pki.client[0]
    der = x509.load_pem_x509_certificate(pem).public_bytes(serialization.Encoding.DER)
    (tmp_path / "c.pem").write_bytes(pem)
    shown = subprocess.run(
        ["openssl", "x509", "-in", str(tmp_path / "c.pem"), "-noout", "-fingerprint", "-sha256"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    expected = shown.strip().split("=", 1)[1].replace(":", "").lower()
    assert fingerprint(pem) == fingerprint(der) == fingerprint(pem.decode()) == expected
    assert len(expected) == 64
    with pytest.raises(MtlsError, match="neither PEM nor DER"):
        fingerprint(b"\x30\x03garbage")

    class NoCertificate:
        def getpeercert(self, binary_form: bool = False) -> None:
            return None

    with pytest.raises(MtlsError, match="presented no certificate"):
        peer_fingerprint(NoCertificate())  # type: ignore[arg-type]
    with pytest.raises(MtlsError, match="presented no certificate"):
        peer_fingerprint(None)  # a connection without TLS


def test_a_private_key_reaches_ssl_encrypted_in_a_memory_file_only(
    pki: Pki, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[tuple[str, bytes]] = []
    real = mtls._memory_file

    @contextlib.contextmanager
    def spy(data: bytes) -> Iterator[str]:
        with real(data) as path:
            seen.append((path, data))
            yield path

    monkeypatch.setattr(mtls, "_memory_file", spy)
    folders = [Path("/dev/shm"), Path(tempfile.gettempdir())]
    before = {p for f in folders if f.is_dir() for p in f.iterdir()}
    pki.server_ctx()
    after = {p for f in folders if f.is_dir() for p in f.iterdir()}
    assert after == before  # no file named anywhere, not even for a moment that lasted
    key = pki.server[1]
    body = b"".join(key.splitlines()[1:-1])
    key_files = [(p, d) for p, d in seen if b"PRIVATE KEY" in d]
    assert len(key_files) == 1
    path, data = key_files[0]
    assert path.startswith("/proc/self/fd/")  # an anonymous memory file (memfd)
    assert b"-----BEGIN ENCRYPTED PRIVATE KEY-----" in data
    assert body not in data and body[:24] not in data


def test_the_ca_keeps_its_key_in_the_keystore_and_its_revocations_in_its_crl(
    pki: Pki, tmp_path: Path
) -> None:
    assert sorted(p.name for p in (tmp_path / "ca").iterdir()) == [
        "providers-ca.pem",
        "providers-crl.pem",
    ]
    ca_key = pki.ca.keystore.get("provisioning/providers/ca-key")
    assert ca_key is not None and b"PRIVATE KEY" in ca_key
    body = b"".join(ca_key.splitlines()[1:-1])
    for path in tmp_path.rglob("*"):
        if path.is_file():
            assert body[:24] not in path.read_bytes(), path
    with pytest.raises(FileExistsError, match="exists already"):
        ProviderAuthority.create("providers", pki.ca.keystore, tmp_path / "ca")
    pki.ca.revoke(pki.client[0])
    crl = (tmp_path / "ca" / "providers-crl.pem").read_bytes()
    again = ProviderAuthority.load("providers", pki.ca.keystore, tmp_path / "ca")
    serial = x509.load_pem_x509_certificate(pki.client[0]).serial_number
    listed = x509.load_pem_x509_crl(again.crl_pem())
    assert [r.serial_number for r in listed] == [serial]
    with pytest.raises(MtlsError, match="not one this CA issued"):
        again.revoke(pki.other.issue("stranger", client=True)[0])
    assert (tmp_path / "ca" / "providers-crl.pem").read_bytes() == crl  # nothing changed
    (tmp_path / "ca" / "providers-crl.pem").write_bytes(pki.other.crl_pem())
    with pytest.raises(MtlsError, match="not signed by its CA"):
        ProviderAuthority.load("providers", pki.ca.keystore, tmp_path / "ca")


def test_unusable_inputs_are_refused_with_what_to_do(pki: Pki) -> None:
    cert, key = pki.client
    other_key = pki.ca.issue("x", client=True)[1]
    trust, crl = pki.ca.cert_pem, pki.ca.crl_pem()
    cases: list[tuple[Callable[[], object], str]] = [
        (lambda: client_context(cert, other_key, trust, crl), "not the key of"),
        (lambda: client_context(cert, b"not a key", trust, crl), "not an unencrypted PEM key"),
        (lambda: client_context(b"not a cert", key, trust, crl), "not one PEM X.509"),
        (lambda: client_context(cert, key, b"", crl), "holds no PEM CERTIFICATE"),
        (lambda: client_context(cert, key, trust, b""), "holds no PEM X509 CRL"),
        (lambda: ProviderAuthority.create("Bad Name", pki.ca.keystore, Path(".")), "a-z 0-9"),
        (lambda: pki.ca.issue("", client=True), "1 to 64 printable"),
        (lambda: pki.ca.issue("x", client=True, not_after=datetime(2030, 1, 1)), "aware"),
        (lambda: pki.ca.issue("x", client=False, hosts=["bad host"]), "IP address or a DNS"),
        (lambda: pki.ca.issue("x", client=False, hosts=["-x.example"]), "IP address or a DNS"),
    ]
    for act, message in cases:
        with pytest.raises(MtlsError, match=message):
            act()


class FixedClock:
    def __init__(self, at: datetime) -> None:
        self.at = at

    def now(self) -> datetime:
        return self.at

    async def sleep(self, seconds: float) -> None:
        raise NotImplementedError


def test_an_expired_crl_fails_closed(pki: Pki, tmp_path: Path) -> None:
    week_ago = ProviderAuthority.load(
        "providers",
        pki.ca.keystore,
        tmp_path / "ca",
        clock=FixedClock(datetime.now(UTC) - timedelta(days=7, minutes=1)),
    )
    crl = x509.load_pem_x509_crl(week_ago.crl_pem())
    assert crl.next_update_utc is not None and crl.next_update_utc < datetime.now(UTC)
    server = server_context(*pki.server, pki.ca.cert_pem, week_ago.crl_pem())
    with serving(server) as (port, outcome):
        refused(port, pki.client_ctx())
        err = _server_error(outcome)
    assert isinstance(err, ssl.SSLCertVerificationError) and err.verify_code == 12
    assert err.verify_message == "CRL has expired"  # a stale CRL refuses everyone


async def test_the_contexts_serve_asyncio_streams_and_refuse_there_without_hanging(
    pki: Pki,
) -> None:
    seen: list[str] = []

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        seen.append(peer_fingerprint(writer.get_extra_info("ssl_object")))
        writer.write(await reader.read(4))
        await writer.drain()
        writer.close()
        await writer.wait_closed()

    server = await asyncio.start_server(handle, "127.0.0.1", 0, ssl=pki.server_ctx())
    port = server.sockets[0].getsockname()[1]
    try:
        reader, writer = await asyncio.wait_for(
            asyncio.open_connection(
                "127.0.0.1", port, ssl=pki.client_ctx(), server_hostname="127.0.0.1"
            ),
            TIMEOUT_S,
        )
        assert peer_fingerprint(writer.get_extra_info("ssl_object")) == fingerprint(pki.server[0])
        writer.write(b"ping")
        assert await asyncio.wait_for(reader.read(4), TIMEOUT_S) == b"ping"
        writer.close()
        await writer.wait_closed()
        assert seen == [fingerprint(pki.client[0])]
        stranger = pki.client_ctx(pki.other.issue("premises office", client=True))
        reader, writer = await asyncio.wait_for(
            asyncio.open_connection("127.0.0.1", port, ssl=stranger, server_hostname="127.0.0.1"),
            TIMEOUT_S,
        )
        writer.write(b"ping")
        with contextlib.suppress(ssl.SSLError, ConnectionError):
            assert await asyncio.wait_for(reader.read(4), TIMEOUT_S) == b""
        writer.close()
        with contextlib.suppress(ssl.SSLError, ConnectionError):
            await writer.wait_closed()
        assert seen == [fingerprint(pki.client[0])]  # the stranger never reached the handler
    finally:
        server.close()
        await server.wait_closed()


async def test_mutual_tls_over_https_with_the_project_server(pki: Pki) -> None:
    app = FastAPI()

    @app.get("/health")
    def health() -> dict[str, str]:
        return {"status": "ok"}

    server = HttpServer(app, port=free_port(), ssl_context=pki.server_ctx(), name="a provider")
    await server.start()
    try:
        async with httpx.AsyncClient(verify=pki.client_ctx(), timeout=TIMEOUT_S) as client:
            r = await client.get(f"https://127.0.0.1:{server.port}/health")
            assert r.status_code == 200 and r.json() == {"status": "ok"}
        async with httpx.AsyncClient(verify=_bare_client(pki), timeout=TIMEOUT_S) as client:
            with pytest.raises((httpx.ConnectError, httpx.ReadError, httpx.RemoteProtocolError)):
                await client.get(f"https://127.0.0.1:{server.port}/health")
    finally:
        await server.stop()


KINDS = {
    "no client certificate": "no-client-certificate",
    "a certificate from another CA": "unknown-ca",
    "an expired certificate": "expired",
    "a server certificate as a client's": "wrong-purpose",
    "a TLS 1.1 client": "protocol-version",
    "a TLS 1.2 client offering AES128-SHA alone": "protocol-version",
}


async def test_an_https_server_reports_every_refused_handshake_for_the_audit(pki: Pki) -> None:
    revoked = pki.ca.issue("premises office", client=True)
    pki.ca.revoke(revoked[0])
    refusals: list[HandshakeRefusal] = []
    ctx = watch_handshakes(pki.server_ctx(), refusals.append)
    app = FastAPI()

    @app.get("/health")
    def health() -> dict[str, str]:
        return {"status": "ok"}

    server = HttpServer(app, port=free_port(), ssl_context=ctx, name="a provider")
    await server.start()
    try:
        clients = {case: make(pki) for case, (make, _) in CLIENTS.items()}
        clients["a revoked certificate"] = pki.client_ctx(revoked)
        for case, client in clients.items():
            await asyncio.to_thread(refused, server.port, client)
            for _ in range(500):  # the server's side finishes a moment after the client's
                if refusals:
                    break
                await asyncio.sleep(0.01)
            got = refusals.pop(0)
            assert got.kind == KINDS.get(case, "revoked"), (case, got)
            assert not refusals, case
        async with httpx.AsyncClient(verify=pki.client_ctx(), timeout=TIMEOUT_S) as c:
            assert (await c.get(f"https://127.0.0.1:{server.port}/health")).status_code == 200
        assert refusals == []  # a good handshake is no refusal
    finally:
        await server.stop()


def test_a_blocking_server_reports_too_and_a_failing_watcher_changes_nothing(pki: Pki) -> None:
    def broken(found: HandshakeRefusal) -> None:
        raise RuntimeError("the audit log is down")

    with serving(watch_handshakes(pki.server_ctx(), broken)) as (port, outcome):
        refused(port, _bare_client(pki))
        err = _server_error(outcome)  # still refused, with OpenSSL's own error
    assert refusal(err) == HandshakeRefusal(kind="no-client-certificate", detail=str(err))


async def test_the_client_side_names_its_refusal_through_httpx(pki: Pki) -> None:
    foreign = pki.other.issue("comfort-optimiser.example", client=False)
    ctx = server_context(*foreign, pki.ca.cert_pem + pki.other.cert_pem, _crls(pki))
    server = HttpServer(FastAPI(), port=free_port(), ssl_context=ctx, name="a stranger")
    await server.start()
    try:
        async with httpx.AsyncClient(verify=pki.client_ctx(), timeout=TIMEOUT_S) as c:
            with pytest.raises(httpx.ConnectError) as err:
                await c.get(f"https://127.0.0.1:{server.port}/")
    finally:
        await server.stop()
    found = refusal(err.value)
    assert found is not None and found.kind == "unknown-ca"
    assert found.detail == "self-signed certificate in certificate chain"
    assert refusal(ValueError("not TLS")) is None


async def test_an_https_route_knows_its_client_by_certificate_fingerprint(pki: Pki) -> None:
    app = FastAPI()

    @app.get("/whoami")
    def whoami(request: Request) -> dict[str, str]:
        try:
            return {"fingerprint": asgi_peer_fingerprint(request.scope)}
        except MtlsError as err:
            return {"error": str(err)}

    server = HttpServer(app, port=free_port(), ssl_context=pki.server_ctx(), name="a provider")
    expose_peer_fingerprints(server.server.config)
    plain = HttpServer(app, port=free_port(), name="a plain server")
    expose_peer_fingerprints(plain.server.config)
    await server.start()
    await plain.start()
    try:
        second = pki.ca.issue("premises linden", client=True)
        for cert in (pki.client, second, pki.client):
            async with httpx.AsyncClient(verify=pki.client_ctx(cert), timeout=TIMEOUT_S) as c:
                for _ in range(2):  # two requests on one kept-alive connection
                    r = await c.get(f"https://127.0.0.1:{server.port}/whoami")
                    assert r.json() == {"fingerprint": fingerprint(cert[0])}
        async with httpx.AsyncClient(timeout=TIMEOUT_S) as c:
            r = await c.get(f"http://127.0.0.1:{plain.port}/whoami")
        assert "without a client certificate" in r.json()["error"]
    finally:
        await server.stop()
        await plain.stop()
    with pytest.raises(MtlsError, match="before the server starts"):
        expose_peer_fingerprints(server.server.config)
