"""CORS for browser apps on other origins: preflights that allow the Authorization header,
readable Location/ETag, errors a page can read; none while the server is open (`off`) unless
origins are configured. And `ficus serve` with `FICUS_AUTH=off` says loudly that it is open."""

from __future__ import annotations

import dataclasses

from starlette.testclient import TestClient
from tests.auth.conftest import BASE, ISSUER
from tests.conftest import ServerProcess

from ficus.app import create_app
from ficus.config import Settings

APP = "https://app.example.org"


def _preflight(client: TestClient, path: str, method: str = "POST") -> dict[str, str]:
    response = client.options(path, headers={
        "Origin": APP, "Access-Control-Request-Method": method,
        "Access-Control-Request-Headers": "authorization, content-type, if-match",
    })
    assert response.status_code == 200, response.text
    return {k.lower(): v for k, v in response.headers.items()}


def test_preflight_and_exposed_headers_with_smart(fhir_settings: Settings) -> None:
    with TestClient(create_app(dataclasses.replace(fhir_settings, auth="smart")), base_url=ISSUER) as client:
        allowed = _preflight(client, f"{BASE}/Patient")
        assert allowed["access-control-allow-origin"] == "*"
        assert "authorization" in allowed["access-control-allow-headers"].lower()
        assert "PUT" in allowed["access-control-allow-methods"]
        assert _preflight(client, f"{ISSUER}/auth/token")["access-control-allow-origin"] == "*"

        denied = client.get(f"{BASE}/Patient", headers={"Origin": APP})
        assert denied.status_code == 401
        assert denied.headers["access-control-allow-origin"] == "*"  # the page can read why
        exposed = denied.headers["access-control-expose-headers"]
        for name in ("Location", "ETag", "Last-Modified", "WWW-Authenticate"):
            assert name in exposed
        discovery = client.get(f"{BASE}/.well-known/smart-configuration", headers={"Origin": APP})
        assert discovery.headers["access-control-allow-origin"] == "*"


def test_configured_origins_only(fhir_settings: Settings) -> None:
    settings = dataclasses.replace(fhir_settings, auth="smart", cors_origins=f"{APP}, https://other.example")
    with TestClient(create_app(settings), base_url=ISSUER) as client:
        assert _preflight(client, f"{BASE}/Patient")["access-control-allow-origin"] == APP
        foreign = client.options(f"{BASE}/Patient", headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "GET"})
        assert foreign.status_code == 400
        assert "access-control-allow-origin" not in foreign.headers
        # the authorization server's endpoints follow the same origins
        assert _preflight(client, f"{ISSUER}/auth/token")["access-control-allow-origin"] == APP
        token = client.post(f"{ISSUER}/auth/token", data={"grant_type": "client_credentials"}, headers={"Origin": "https://evil.example"})
        assert token.status_code in (400, 401)
        assert "access-control-allow-origin" not in token.headers


def test_no_origins_means_no_cors_on_the_authorization_server_either(fhir_settings: Settings) -> None:
    settings = dataclasses.replace(fhir_settings, auth="smart", cors_origins="")
    with TestClient(create_app(settings), base_url=ISSUER) as client:
        for path in (f"{BASE}/.well-known/smart-configuration", f"{ISSUER}/auth/jwks", f"{BASE}/metadata"):
            response = client.get(path, headers={"Origin": APP})
            assert response.status_code == 200, path
            assert "access-control-allow-origin" not in response.headers, path


def test_no_cors_for_an_open_server_unless_asked(fhir_settings: Settings) -> None:
    with TestClient(create_app(dataclasses.replace(fhir_settings, auth="off")), base_url=ISSUER) as client:
        response = client.get(f"{BASE}/metadata", headers={"Origin": APP})
        assert response.status_code == 200
        assert "access-control-allow-origin" not in response.headers
    opened = dataclasses.replace(fhir_settings, auth="off", cors_origins="*")
    with TestClient(create_app(opened), base_url=ISSUER) as client:
        assert client.get(f"{BASE}/metadata", headers={"Origin": APP}).headers["access-control-allow-origin"] == "*"


def test_settings_from_the_environment(monkeypatch) -> None:  # noqa: ANN001
    monkeypatch.setenv("FICUS_AUTH", "smart")
    monkeypatch.setenv("FICUS_CORS_ORIGINS", "https://a.example/,https://b.example")
    assert Settings.from_environment().allowed_origins == ["https://a.example", "https://b.example"]
    monkeypatch.setenv("FICUS_CORS_ORIGINS", "")
    assert Settings.from_environment().allowed_origins == []
    monkeypatch.delenv("FICUS_CORS_ORIGINS")
    assert Settings.from_environment().allowed_origins == ["*"]


def test_an_open_server_says_so_at_start(auth_database_url: str) -> None:
    server = ServerProcess(auth_database_url)  # FICUS_AUTH=off, as the shared fixtures run it
    try:
        log = server.log_text()
        assert "FICUS_AUTH=off" in log and "is OPEN" in log and server.base_url in log
    finally:
        server.stop()
