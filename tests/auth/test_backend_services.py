"""SMART Backend Services: client_credentials with private_key_jwt assertions signed RS384 and
ES384 with joserfc, keys registered as a JWKS or served at a JWKS URL, jti replay protection."""

from __future__ import annotations

import time
import uuid

import httpx
import pytest
from joserfc import jwt
from joserfc.jwk import ECKey, KeySet, RSAKey
from starlette.testclient import TestClient
from tests.auth.conftest import BASE, ISSUER
from tests.auth.harness import JSON, smart_app

from ficus.auth.admin import AuthAdmin
from ficus.auth.service import SmartAuth
from ficus.auth.settings import AuthSettings

TOKEN = f"{ISSUER}/auth/token"
ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"


def _key(alg: str) -> RSAKey | ECKey:
    if alg.startswith("RS"):
        return RSAKey.generate_key(2048, parameters={"alg": alg}, auto_kid=True)
    return ECKey.generate_key("P-384", parameters={"alg": alg}, auto_kid=True)


def _jwks(*keys: RSAKey | ECKey) -> dict:
    return {"keys": [key.as_dict(private=False) for key in keys]}


def _assertion(client_id: str, key: RSAKey | ECKey, alg: str, jti: str | None = None, lifetime: int = 240, aud: str = TOKEN) -> str:
    now = int(time.time())
    claims = {"iss": client_id, "sub": client_id, "aud": aud, "exp": now + lifetime, "iat": now, "jti": jti or uuid.uuid4().hex}
    return jwt.encode({"alg": alg, "kid": key.kid, "typ": "JWT"}, claims, key, algorithms=[alg])


def _token(client: TestClient, assertion: str, scope: str = "system/*.rs") -> httpx.Response:
    return client.post(TOKEN, data={
        "grant_type": "client_credentials", "scope": scope,
        "client_assertion_type": ASSERTION_TYPE, "client_assertion": assertion,
    })


@pytest.mark.parametrize("alg", ["RS384", "ES384"])
def test_backend_service_gets_a_system_token(app_client: TestClient, admin: AuthAdmin, alg: str) -> None:
    key = _key(alg)
    admin.register_client("Bulk", "confidential-asymmetric", scope="system/Patient.rs system/Observation.rs", jwks=_jwks(key), client_id="bulk")
    response = _token(app_client, _assertion("bulk", key, alg), "system/Patient.rs system/Observation.cruds user/*.rs")
    token = response.json()
    assert response.status_code == 200, token
    assert token["scope"] == "system/Patient.rs system/Observation.rs"  # narrowed; user/ never for machines
    assert "refresh_token" not in token and "patient" not in token
    headers = {"Authorization": f"Bearer {token['access_token']}"}
    assert app_client.get(f"{BASE}/Patient", headers=headers).status_code == 200
    written = app_client.post(f"{BASE}/Patient", json={"resourceType": "Patient"}, headers={**headers, **JSON})
    assert written.status_code == 403


def test_replayed_jti_is_rejected(app_client: TestClient, admin: AuthAdmin) -> None:
    key = _key("ES384")
    admin.register_client("Bulk", "confidential-asymmetric", scope="system/*.rs", jwks=_jwks(key), client_id="bulk")
    assertion = _assertion("bulk", key, "ES384", jti="once")
    assert _token(app_client, assertion).status_code == 200
    replay = _token(app_client, assertion)
    assert replay.status_code == 400 and replay.json()["error"] == "invalid_client"
    fresh_signature_same_jti = _assertion("bulk", key, "ES384", jti="once")
    assert _token(app_client, fresh_signature_same_jti).json()["error"] == "invalid_client"


def test_assertion_signed_with_another_key_is_rejected(app_client: TestClient, admin: AuthAdmin) -> None:
    registered, other = _key("RS384"), _key("RS384")
    admin.register_client("Bulk", "confidential-asymmetric", scope="system/*.rs", jwks=_jwks(registered), client_id="bulk")
    forged = jwt.encode(
        {"alg": "RS384", "kid": registered.kid},
        {"iss": "bulk", "sub": "bulk", "aud": TOKEN, "exp": int(time.time()) + 60, "jti": uuid.uuid4().hex},
        other, algorithms=["RS384"],
    )
    assert _token(app_client, forged).json()["error"] == "invalid_client"


@pytest.mark.parametrize(("change", "value"), [("aud", "https://elsewhere.example/token"), ("lifetime", 3600), ("lifetime", -120)])
def test_bad_assertion_claims_are_rejected(app_client: TestClient, admin: AuthAdmin, change: str, value: object) -> None:
    key = _key("RS384")
    admin.register_client("Bulk", "confidential-asymmetric", scope="system/*.rs", jwks=_jwks(key), client_id="bulk")
    kwargs = {"aud": value} if change == "aud" else {"lifetime": value}
    assert _token(app_client, _assertion("bulk", key, "RS384", **kwargs)).json()["error"] == "invalid_client"  # type: ignore[arg-type]


def test_symmetric_algorithms_are_not_accepted(app_client: TestClient, admin: AuthAdmin) -> None:
    from joserfc.jwk import OctKey

    key = _key("RS384")
    admin.register_client("Bulk", "confidential-asymmetric", scope="system/*.rs", jwks=_jwks(key), client_id="bulk")
    secret = OctKey.import_key("x" * 32)
    forged = jwt.encode({"alg": "HS256"}, {"iss": "bulk", "sub": "bulk", "aud": TOKEN, "exp": int(time.time()) + 60, "jti": "j"}, secret)
    assert _token(app_client, forged).json()["error"] == "invalid_client"


def test_only_system_scopes_this_client_is_registered_for(app_client: TestClient, admin: AuthAdmin) -> None:
    key = _key("ES384")
    admin.register_client("Bulk", "confidential-asymmetric", scope="system/Observation.rs", jwks=_jwks(key), client_id="bulk")
    response = _token(app_client, _assertion("bulk", key, "ES384"), "system/Patient.rs")
    assert response.status_code == 400 and response.json()["error"] == "invalid_scope"


def test_keys_from_a_jwks_url(fhir_settings, auth_database_url: str, admin: AuthAdmin) -> None:
    key = _key("RS384")
    served = {"https://bulk.example/jwks.json": _jwks(key)}
    smart = SmartAuth(AuthSettings(base_url=BASE), fetch=lambda url: served[url])
    admin.register_client("Bulk", "confidential-asymmetric", scope="system/*.rs", jwks_url="https://bulk.example/jwks.json", client_id="bulk")
    with TestClient(smart_app(fhir_settings, smart), base_url=ISSUER) as client:
        assert _token(client, _assertion("bulk", key, "RS384")).status_code == 200
        rotated = _key("RS384")
        served["https://bulk.example/jwks.json"] = _jwks(rotated)  # the client rotated its key
        assert _token(client, _assertion("bulk", key, "RS384")).json()["error"] == "invalid_client"
        assert _token(client, _assertion("bulk", rotated, "RS384")).status_code == 200


def test_client_secret_is_an_alternative_for_backend_services(app_client: TestClient, admin: AuthAdmin) -> None:
    registered = admin.register_client("Batch", "confidential-symmetric", scope="system/*.rs", grant_types=["client_credentials"])
    response = app_client.post(TOKEN, data={"grant_type": "client_credentials", "scope": "system/*.rs"}, auth=(registered.client.client_id, "wrong"))
    assert response.status_code == 401 and response.json()["error"] == "invalid_client"
    response = app_client.post(TOKEN, data={"grant_type": "client_credentials", "scope": "system/*.rs"}, auth=(registered.client.client_id, registered.secret or ""))
    assert response.status_code == 200


def test_public_clients_cannot_use_client_credentials(app_client: TestClient, admin: AuthAdmin) -> None:
    admin.register_client("Public", "public", ["https://app.example.org/cb"], "patient/*.rs", client_id="pub")
    response = app_client.post(TOKEN, data={"grant_type": "client_credentials", "scope": "system/*.rs", "client_id": "pub"})
    assert response.json()["error"] in ("invalid_client", "unauthorized_client")


def test_jwks_and_discovery_advertise_the_assertion_algorithms(app_client: TestClient) -> None:
    config = app_client.get(f"{BASE}/.well-known/smart-configuration").json()
    assert {"RS384", "ES384"} <= set(config["token_endpoint_auth_signing_alg_values_supported"])
    assert "private_key_jwt" in config["token_endpoint_auth_methods_supported"]
    assert "client-confidential-asymmetric" in config["capabilities"]
    assert KeySet.import_key_set(app_client.get(f"{ISSUER}/auth/jwks").json()).keys


def test_fetch_jwks_over_http() -> None:
    import json
    import threading
    from http.server import BaseHTTPRequestHandler, HTTPServer

    from ficus.auth.service import fetch_jwks

    document = _jwks(_key("ES384"))

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = json.dumps(document if self.path == "/jwks.json" else {"no": "keys"}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = HTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        base = f"http://127.0.0.1:{server.server_address[1]}"
        assert fetch_jwks(f"{base}/jwks.json") == document
        with pytest.raises(ValueError, match="does not hold a JWKS"):
            fetch_jwks(f"{base}/other")
        with pytest.raises(ValueError, match="http"):
            fetch_jwks("file:///etc/passwd")
    finally:
        server.shutdown()
