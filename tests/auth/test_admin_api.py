"""The administration API over HTTP: only unrestricted administrators; clients registered over
it work at once (and their secret is shown once), launch contexts made over it drive a real EHR
launch, key rotation shows in the JWKS, and bad requests get 4xx answers."""

from __future__ import annotations

from starlette.testclient import TestClient
from tests.auth.conftest import BASE, ISSUER, PASSWORD, REDIRECT, World
from tests.auth.harness import Authorization, authorize_url, query_of, sign_in

from ficus.auth.admin import AuthAdmin

ADMIN = f"{ISSUER}/auth/admin"
TOKEN = f"{ISSUER}/auth/token"


def _token(app_client: TestClient, admin: AuthAdmin, scope: str) -> dict[str, str]:
    registered = admin.register_client("Operator", "confidential-symmetric", scope=scope, grant_types=["client_credentials"])
    response = app_client.post(TOKEN, data={"grant_type": "client_credentials", "scope": scope},
                               auth=(registered.client.client_id, registered.secret or ""))
    assert response.status_code == 200, response.text
    return {"Authorization": f"Bearer {response.json()['access_token']}"}


def test_only_administrators(app_client: TestClient, admin: AuthAdmin) -> None:
    missing = app_client.get(f"{ADMIN}/clients")
    assert missing.status_code == 401 and missing.headers["www-authenticate"].startswith("Bearer")
    assert app_client.get(f"{ADMIN}/clients", headers={"Authorization": "Bearer nonsense"}).status_code == 401
    reader = _token(app_client, admin, "system/*.rs")
    denied = app_client.post(f"{ADMIN}/launches", json={"patient": "p"}, headers=reader)
    assert denied.status_code == 403 and denied.json()["error"] == "insufficient_scope"
    assert app_client.get(f"{ADMIN}/clients", headers=_token(app_client, admin, "system/*.cruds")).status_code == 200


def test_register_list_and_remove_clients(app_client: TestClient, admin: AuthAdmin) -> None:
    operator = _token(app_client, admin, "system/*.cruds")
    created = app_client.post(f"{ADMIN}/clients", headers=operator, json={
        "name": "Nightly export", "kind": "confidential-symmetric", "scope": "system/Patient.rs",
        "grant_types": ["client_credentials"], "client_id": "nightly",
    })
    assert created.status_code == 201, created.text
    secret = created.json()["client_secret"]
    token = app_client.post(TOKEN, data={"grant_type": "client_credentials", "scope": "system/Patient.rs"}, auth=("nightly", secret))
    assert token.status_code == 200
    listed = app_client.get(f"{ADMIN}/clients", headers=operator).json()["clients"]
    nightly = next(c for c in listed if c["client_id"] == "nightly")
    assert nightly["scope"] == "system/Patient.rs" and "client_secret" not in nightly
    assert secret not in app_client.get(f"{ADMIN}/clients/nightly", headers=operator).text

    assert app_client.delete(f"{ADMIN}/clients/nightly", headers=operator).status_code == 204
    assert app_client.get(f"{BASE}/Patient", headers={"Authorization": f"Bearer {token.json()['access_token']}"}).status_code == 401
    assert app_client.delete(f"{ADMIN}/clients/nightly", headers=operator).status_code == 404


def test_bad_registrations(app_client: TestClient, admin: AuthAdmin) -> None:
    operator = _token(app_client, admin, "system/*.cruds")
    assert app_client.post(f"{ADMIN}/clients", headers=operator, json={"kind": "public"}).status_code == 400
    wrong_kind = app_client.post(f"{ADMIN}/clients", headers=operator, json={"name": "x", "kind": "mystery"})
    assert wrong_kind.status_code == 400 and "kind" in wrong_kind.json()["error_description"]
    no_redirect = app_client.post(f"{ADMIN}/clients", headers=operator, json={"name": "x", "kind": "public", "scope": "patient/*.rs"})
    assert no_redirect.status_code == 400
    assert app_client.post(f"{ADMIN}/clients", headers=operator, content=b"name=x").status_code == 415
    assert app_client.post(f"{ADMIN}/clients", headers={**operator, "Content-Type": "application/json"}, content=b"[1").status_code == 400
    assert app_client.post(f"{ADMIN}/launches", headers=operator, json={}).status_code == 400


def test_launch_made_over_the_api_drives_an_ehr_launch(app_client: TestClient, admin: AuthAdmin, world: World) -> None:
    operator = _token(app_client, admin, "system/*.cruds")
    made = app_client.post(f"{ADMIN}/launches", headers=operator, json={"patient": world.patient_b, "encounter": "enc-9"})
    assert made.status_code == 201, made.text
    flow = Authorization(world.public_client, REDIRECT, "launch openid patient/*.rs", BASE, extra={"launch": made.json()["launch"]})
    final = sign_in(app_client, authorize_url(ISSUER, flow.params()), "doctor", PASSWORD)
    code = query_of(final.headers["location"])["code"]
    token = app_client.post(TOKEN, data={
        "grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT,
        "client_id": world.public_client, "code_verifier": flow.verifier,
    }).json()
    assert (token["patient"], token["encounter"]) == (world.patient_b, "enc-9")


def test_key_rotation_over_the_api(app_client: TestClient, admin: AuthAdmin) -> None:
    operator = _token(app_client, admin, "system/*.cruds")
    before = {k["kid"] for k in app_client.get(f"{ISSUER}/auth/jwks").json()["keys"]}
    rotated = app_client.post(f"{ADMIN}/keys", headers=operator)
    assert rotated.status_code == 201
    kid = rotated.json()["kid"]
    assert kid not in before
    published = {k["kid"] for k in app_client.get(f"{ISSUER}/auth/jwks").json()["keys"]}
    assert published == before | {kid}  # the old keys stay published for tokens they signed
    keys = app_client.get(f"{ADMIN}/keys", headers=operator).json()["keys"]
    assert [k["kid"] for k in keys if k["retired"] is None] == [kid]
