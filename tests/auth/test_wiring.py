"""`create_app` with `FICUS_AUTH=smart`: the same app the harness builds."""

from __future__ import annotations

import dataclasses

from starlette.testclient import TestClient
from tests.auth.conftest import BASE, ISSUER

from ficus.app import create_app
from ficus.auth.admin import AuthAdmin
from ficus.config import Settings



def test_create_app_with_smart_auth(fhir_settings: Settings, admin: AuthAdmin) -> None:
    settings = dataclasses.replace(fhir_settings, auth="smart")
    with TestClient(create_app(settings), base_url=ISSUER) as client:
        assert client.get(f"{BASE}/.well-known/smart-configuration").json()["token_endpoint"] == f"{ISSUER}/auth/token"
        security = client.get(f"{BASE}/metadata").json()["rest"][0]["security"]
        assert security["service"][0]["coding"][0]["code"] == "SMART-on-FHIR"
        missing = client.get(f"{BASE}/Patient")
        assert missing.status_code == 401 and missing.headers["www-authenticate"].startswith("Bearer")
        service = admin.register_client("Service", "confidential-symmetric", scope="system/Patient.rs", grant_types=["client_credentials"])
        token = client.post(f"{ISSUER}/auth/token", data={"grant_type": "client_credentials", "scope": "system/Patient.rs"},
                            auth=(service.client.client_id, service.secret or "")).json()["access_token"]
        headers = {"Authorization": f"Bearer {token}"}
        assert client.get(f"{BASE}/Patient", headers=headers).status_code == 200
        assert client.get(f"{BASE}/Observation", headers=headers).status_code == 403


def test_smart_is_the_default_and_off_must_be_asked_for(fhir_settings: Settings, monkeypatch) -> None:  # noqa: ANN001
    monkeypatch.delenv("FICUS_AUTH", raising=False)
    assert Settings().auth == "smart"
    assert Settings.from_environment().auth == "smart"
    with TestClient(create_app(dataclasses.replace(fhir_settings, auth="smart")), base_url=ISSUER) as client:
        assert client.get(f"{BASE}/Patient").status_code == 401
    monkeypatch.setenv("FICUS_AUTH", "off")
    assert Settings.from_environment().auth == "off"
    with TestClient(create_app(dataclasses.replace(fhir_settings, auth="off")), base_url=ISSUER) as client:
        assert client.get(f"{BASE}/Patient").status_code == 200
        assert client.get(f"{BASE}/.well-known/smart-configuration").status_code == 404
