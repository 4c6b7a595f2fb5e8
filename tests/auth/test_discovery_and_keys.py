"""Discovery documents, the CapabilityStatement security extension, and signing keys that live
in the database and rotate without breaking tokens signed before."""

from __future__ import annotations

from joserfc import jwt
from joserfc.jwk import KeySet
from starlette.testclient import TestClient
from tests.auth.conftest import BASE, ISSUER, PASSWORD, REDIRECT, World
from tests.auth.harness import Authorization, authorize_url, query_of, sign_in

from ficus.auth.admin import AuthAdmin
from ficus.auth.discovery import OAUTH_URIS, capability_security


def test_smart_configuration(app_client: TestClient) -> None:
    for url in (f"{BASE}/.well-known/smart-configuration", f"{ISSUER}/.well-known/smart-configuration"):
        response = app_client.get(url)
        assert response.status_code == 200
        config = response.json()
        assert config["authorization_endpoint"] == f"{ISSUER}/auth/authorize"
        assert config["token_endpoint"] == f"{ISSUER}/auth/token"
        assert config["code_challenge_methods_supported"] == ["S256"]
        assert {"launch-ehr", "launch-standalone", "permission-v1", "permission-v2", "sso-openid-connect"} <= set(config["capabilities"])


def test_openid_configuration(app_client: TestClient) -> None:
    config = app_client.get(f"{ISSUER}/.well-known/openid-configuration").json()
    assert config["issuer"] == ISSUER
    assert config["jwks_uri"] == f"{ISSUER}/auth/jwks"
    assert config["id_token_signing_alg_values_supported"] == ["RS256"]


def test_capability_statement_names_the_oauth_endpoints(app_client: TestClient) -> None:
    security = app_client.get(f"{BASE}/metadata").json()["rest"][0]["security"]
    assert security["service"][0]["coding"][0]["code"] == "SMART-on-FHIR"
    uris = {e["url"]: e["valueUri"] for e in security["extension"][0]["extension"]}
    assert security["extension"][0]["url"] == OAUTH_URIS
    assert uris["authorize"] == f"{ISSUER}/auth/authorize" and uris["token"] == f"{ISSUER}/auth/token"
    assert capability_security(BASE, "off") is None


def test_the_signing_key_is_shared_through_the_database(app_client: TestClient, admin: AuthAdmin) -> None:
    published = app_client.get(f"{ISSUER}/auth/jwks").json()["keys"]
    stored = admin.signing_keys()
    assert [key["kid"] for key in published] == [key.kid for key in stored]
    assert all("d" not in key for key in published)  # never the private part


def test_rotation_keeps_old_id_tokens_verifiable(app_client: TestClient, admin: AuthAdmin, world: World) -> None:
    def id_token() -> str:
        flow = Authorization(world.public_client, REDIRECT, "openid fhirUser", BASE)
        final = sign_in(app_client, authorize_url(ISSUER, flow.params()), "doctor", PASSWORD)
        code = query_of(final.headers["location"])["code"]
        return app_client.post(f"{ISSUER}/auth/token", data={
            "grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT,
            "client_id": world.public_client, "code_verifier": flow.verifier,
        }).json()["id_token"]

    before = id_token()
    old_kid = admin.signing_keys()[0].kid
    new_kid = admin.rotate_key().kid
    after = id_token()
    jwks = app_client.get(f"{ISSUER}/auth/jwks").json()
    assert [key["kid"] for key in jwks["keys"]] == [new_kid, old_kid]
    keys = KeySet.import_key_set(jwks)
    assert jwt.decode(before, keys, algorithms=["RS256"]).header["kid"] == old_kid
    assert jwt.decode(after, keys, algorithms=["RS256"]).header["kid"] == new_kid
    assert admin.prune_keys(0) == [old_kid]
    assert [key["kid"] for key in app_client.get(f"{ISSUER}/auth/jwks").json()["keys"]] == [new_kid]


def test_prompt_none_without_a_session_is_login_required(app_client: TestClient, world: World) -> None:
    flow = Authorization(world.public_client, REDIRECT, "openid patient/*.rs", BASE, extra={"prompt": "none"})
    response = app_client.get(authorize_url(ISSUER, flow.params()), follow_redirects=False)
    assert query_of(response.headers["location"])["error"] == "login_required"


def test_authorize_accepts_post(app_client: TestClient, world: World) -> None:
    flow = Authorization(world.public_client, REDIRECT, "patient/*.rs", BASE)
    response = app_client.post(f"{ISSUER}/auth/authorize", data=flow.params(), follow_redirects=False)
    assert response.status_code == 303 and "/auth/login?request=" in response.headers["location"]


def test_pages_cannot_be_framed(app_client: TestClient, world: World) -> None:
    flow = Authorization(world.public_client, REDIRECT, "patient/*.rs", BASE)
    login = app_client.get(authorize_url(ISSUER, flow.params()), follow_redirects=False).headers["location"]
    page = app_client.get(login)
    assert page.headers["x-frame-options"] == "DENY"
    assert "frame-ancestors 'none'" in page.headers["content-security-policy"]
    assert page.headers["cache-control"] == "no-store"
