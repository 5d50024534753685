"""The site's CA and server certificate (``openmeg certs init``, their keys in the keystore,
never in a file) and the API over HTTPS with its key loaded from the keystore."""

import ssl
import tempfile
from pathlib import Path

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from fastapi import FastAPI
from typer.testing import CliRunner

from openmeg.cli import app as cli
from openmeg.protocols.http_server import HttpServer
from openmeg.protocols.tls import server_context
from tests.keys import env_keystore
from tests.services import free_port


async def test_https_with_the_site_certificate(tmp_path: Path) -> None:
    runner = CliRunner()
    done = runner.invoke(cli, ["certs", "init", "--out", str(tmp_path), "--host", "meg.local"])
    assert done.exit_code == 0, done.stderr
    server_pem = x509.load_pem_x509_certificate((tmp_path / "server.pem").read_bytes())
    san = server_pem.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert set(san.get_values_for_type(x509.DNSName)) == {"localhost", "meg.local"}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ca.pem", "server.pem"]
    keys = env_keystore()
    ca_key = serialization.load_pem_private_key(keys.get("ca/key") or b"", None)
    ca_pem = x509.load_pem_x509_certificate((tmp_path / "ca.pem").read_bytes())
    assert ca_key.public_key() == ca_pem.public_key()
    again = runner.invoke(cli, ["certs", "init", "--out", str(tmp_path)])
    assert again.exit_code == 2 and "--force" in again.stderr

    app = FastAPI()

    @app.get("/health")
    def health() -> dict[str, str]:
        return {"status": "ok"}

    port = free_port()
    before = set(Path("/dev/shm").iterdir()) | set(Path(tempfile.gettempdir()).iterdir())
    server = HttpServer(app, port=port, ssl_context=server_context(tmp_path / "server.pem", keys))
    after = set(Path("/dev/shm").iterdir()) | set(Path(tempfile.gettempdir()).iterdir())
    assert not [p for p in after - before if p.name.startswith("openmeg-key-")]  # removed at once
    await server.start()
    try:
        trusted = ssl.create_default_context(cafile=str(tmp_path / "ca.pem"))
        async with httpx.AsyncClient(verify=trusted) as c:
            r = await c.get(f"https://127.0.0.1:{port}/health")
            assert r.status_code == 200 and server.url.startswith("https://")
            r = await c.get(f"https://localhost:{port}/health")
            assert r.status_code == 200
        async with httpx.AsyncClient() as stranger:  # the system's CAs do not know the site CA
            with pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
                await stranger.get(f"https://127.0.0.1:{port}/health")
    finally:
        await server.stop()


def test_key_files_of_an_older_openmeg_move_into_the_keystore(tmp_path: Path) -> None:
    from openmeg.protocols.tls import adopt_key_files

    keys = env_keystore()
    (tmp_path / "server.key").write_bytes(b"-----BEGIN PRIVATE KEY-----\nold\n")
    assert adopt_key_files(tmp_path, keys) == [tmp_path / "server.key"]
    assert not (tmp_path / "server.key").exists()
    assert keys.get("tls/server-key") == b"-----BEGIN PRIVATE KEY-----\nold\n"


def test_a_key_file_for_a_server_that_needs_one_is_private(tmp_path: Path) -> None:
    runner = CliRunner()
    assert runner.invoke(cli, ["certs", "init", "--out", str(tmp_path)]).exit_code == 0
    done = runner.invoke(cli, ["certs", "key-file", "--out", str(tmp_path / "mqtt.key")])
    assert done.exit_code == 0, done.stderr
    assert (tmp_path / "mqtt.key").stat().st_mode & 0o777 == 0o600
    assert (tmp_path / "mqtt.key").read_bytes() == env_keystore().get("tls/server-key")
