"""`ficus serve` as deployed, on a real socket: without any FICUS_AUTH setting it requires SMART
tokens, and a Backend Services client (private_key_jwt signed ES384 with joserfc) discovers the
token endpoint, gets a system token, reads, and is refused a replayed assertion and a revoked
token."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator

import httpx
import pytest
from joserfc import jwt
from joserfc.jwk import ECKey
from tests.conftest import ServerProcess

from ficus.auth.admin import AuthAdmin

ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"


@pytest.fixture
def served(auth_database_url: str) -> Iterator[ServerProcess]:
    process = ServerProcess(auth_database_url, env={"FICUS_AUTH": None})  # the default mode
    yield process
    process.stop()


def _assertion(client_id: str, key: ECKey, audience: str, jti: str | None = None) -> str:
    now = int(time.time())
    claims = {"iss": client_id, "sub": client_id, "aud": audience, "exp": now + 120, "iat": now, "jti": jti or uuid.uuid4().hex}
    return jwt.encode({"alg": "ES384", "kid": key.kid, "typ": "JWT"}, claims, key, algorithms=["ES384"])


def test_default_server_needs_tokens_and_serves_backend_services(served: ServerProcess, admin: AuthAdmin) -> None:
    base = served.base_url
    assert "is OPEN" not in served.log_text()
    refused = httpx.get(f"{base}/Patient")
    assert refused.status_code == 401 and refused.json()["resourceType"] == "OperationOutcome"
    assert refused.headers["www-authenticate"].startswith("Bearer")
    security = httpx.get(f"{base}/metadata").json()["rest"][0]["security"]
    assert security["service"][0]["coding"][0]["code"] == "SMART-on-FHIR"

    config = httpx.get(f"{base}/.well-known/smart-configuration").json()
    assert "ES384" in config["token_endpoint_auth_signing_alg_values_supported"]
    token_url, revoke_url = config["token_endpoint"], config["revocation_endpoint"]
    key = ECKey.generate_key("P-384", parameters={"alg": "ES384"}, auto_kid=True)
    admin.register_client("Nightly", "confidential-asymmetric", scope="system/*.cruds",
                          jwks={"keys": [key.as_dict(private=False)]}, client_id="nightly")

    assertion = _assertion("nightly", key, token_url)
    form = {"grant_type": "client_credentials", "scope": "system/Patient.cruds", "client_assertion_type": ASSERTION_TYPE}
    granted = httpx.post(token_url, data={**form, "client_assertion": assertion})
    assert granted.status_code == 200, granted.text
    access = granted.json()["access_token"]
    headers = {"Authorization": f"Bearer {access}"}
    created = httpx.post(f"{base}/Patient", json={"resourceType": "Patient", "name": [{"family": "Live"}]},
                         headers={**headers, "Content-Type": "application/fhir+json"})
    assert created.status_code == 201
    assert httpx.get(f"{base}/Patient", headers=headers).json()["total"] == 1
    assert httpx.get(f"{base}/Observation", headers=headers).status_code == 403  # only Patient was asked for

    replayed = httpx.post(token_url, data={**form, "client_assertion": assertion})
    assert replayed.status_code in (400, 401) and replayed.json()["error"] == "invalid_client"

    revoked = httpx.post(revoke_url, data={
        "token": access, "client_assertion_type": ASSERTION_TYPE, "client_assertion": _assertion("nightly", key, revoke_url),
    })
    assert revoked.status_code == 200, revoked.text
    assert httpx.get(f"{base}/Patient", headers=headers).status_code == 401
