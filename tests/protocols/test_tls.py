"""The site's CA and server certificate (``openmeg certs init``) and the API over HTTPS."""

import ssl
from pathlib import Path

import httpx
import pytest
from cryptography import x509
from fastapi import FastAPI
from typer.testing import CliRunner

from openmeg.cli import app as cli
from openmeg.protocols.http_server import HttpServer
from tests.services import free_port


async def test_https_with_the_site_certificate(tmp_path: Path) -> None:
    runner = CliRunner()
    done = runner.invoke(cli, ["certs", "init", "--out", str(tmp_path), "--host", "meg.local"])
    assert done.exit_code == 0, done.stderr
    server_pem = x509.load_pem_x509_certificate((tmp_path / "server.pem").read_bytes())
    san = server_pem.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert set(san.get_values_for_type(x509.DNSName)) == {"localhost", "meg.local"}
    assert (tmp_path / "server.key").stat().st_mode & 0o077 == 0  # the owner's alone
    again = runner.invoke(cli, ["certs", "init", "--out", str(tmp_path)])
    assert again.exit_code == 2 and "--force" in again.stderr

    app = FastAPI()

    @app.get("/health")
    def health() -> dict[str, str]:
        return {"status": "ok"}

    port = free_port()
    server = HttpServer(
        app, port=port, certfile=tmp_path / "server.pem", keyfile=tmp_path / "server.key"
    )
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
