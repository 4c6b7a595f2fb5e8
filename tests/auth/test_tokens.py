"""Refresh tokens (rotation, reuse detection, no escalation), revocation (RFC 7009) and
introspection (RFC 7662), over HTTP on both databases."""

from __future__ import annotations

from starlette.testclient import TestClient
from tests.auth.conftest import BASE, ISSUER, REDIRECT, World, code_flow_tokens

from ficus.auth.admin import AuthAdmin

TOKEN, REVOKE, INTROSPECT = (f"{ISSUER}/auth/{name}" for name in ("token", "revoke", "introspect"))


def _refresh(app_client: TestClient, world: World, refresh_token: str, **extra: str) -> tuple[int, dict]:
    response = app_client.post(TOKEN, data={
        "grant_type": "refresh_token", "refresh_token": refresh_token, "client_id": world.public_client, **extra,
    })
    return response.status_code, response.json()


def _read(app_client: TestClient, token: str, world: World) -> int:
    return app_client.get(f"{BASE}/Patient/{world.patient_a}", headers={"Authorization": f"Bearer {token}"}).status_code


def test_refresh_rotates_and_keeps_the_context(app_client: TestClient, world: World) -> None:
    first = code_flow_tokens(app_client, world, "launch/patient offline_access patient/*.rs")
    assert "refresh_token" in first
    status, second = _refresh(app_client, world, first["refresh_token"])
    assert status == 200, second
    assert second["refresh_token"] != first["refresh_token"]
    assert second["patient"] == world.patient_a
    assert second["scope"] == first["scope"]
    assert _read(app_client, second["access_token"], world) == 200
    status, third = _refresh(app_client, world, second["refresh_token"])
    assert status == 200, third


def test_replayed_refresh_token_ends_the_grant(app_client: TestClient, world: World) -> None:
    first = code_flow_tokens(app_client, world, "launch/patient online_access patient/*.rs")
    status, second = _refresh(app_client, world, first["refresh_token"])
    assert status == 200
    status, replay = _refresh(app_client, world, first["refresh_token"])
    assert (status, replay["error"]) == (400, "invalid_grant")
    # the thief and the app cannot both continue: the rotated family is revoked
    assert _read(app_client, second["access_token"], world) == 401
    assert _refresh(app_client, world, second["refresh_token"])[1]["error"] == "invalid_grant"


def test_refresh_may_narrow_but_not_widen(app_client: TestClient, world: World) -> None:
    first = code_flow_tokens(app_client, world, "launch/patient offline_access patient/Observation.rs patient/Patient.rs")
    status, widened = _refresh(app_client, world, first["refresh_token"], scope="offline_access patient/*.cruds")
    assert (status, widened["error"]) == (400, "invalid_scope")
    status, narrowed = _refresh(app_client, world, first["refresh_token"], scope="offline_access patient/Observation.r")
    assert status == 200, narrowed
    assert narrowed["scope"] == "offline_access patient/Observation.r"
    assert _read(app_client, narrowed["access_token"], world) == 403


def test_refresh_token_of_another_client_is_refused(app_client: TestClient, world: World, admin: AuthAdmin) -> None:
    first = code_flow_tokens(app_client, world, "launch/patient offline_access patient/*.rs")
    admin.register_client("Other", "public", [REDIRECT], "offline_access patient/*.rs", client_id="other")
    response = app_client.post(TOKEN, data={"grant_type": "refresh_token", "refresh_token": first["refresh_token"], "client_id": "other"})
    assert response.json()["error"] == "invalid_grant"


def test_revoking_an_access_token(app_client: TestClient, world: World) -> None:
    tokens = code_flow_tokens(app_client, world, "launch/patient offline_access patient/*.rs")
    response = app_client.post(REVOKE, data={"token": tokens["access_token"], "client_id": world.public_client})
    assert response.status_code == 200
    assert _read(app_client, tokens["access_token"], world) == 401
    assert _refresh(app_client, world, tokens["refresh_token"])[0] == 200  # the refresh token lives on


def test_revoking_a_refresh_token_ends_the_grant(app_client: TestClient, world: World) -> None:
    tokens = code_flow_tokens(app_client, world, "launch/patient offline_access patient/*.rs")
    response = app_client.post(REVOKE, data={"token": tokens["refresh_token"], "token_type_hint": "refresh_token", "client_id": world.public_client})
    assert response.status_code == 200
    assert _read(app_client, tokens["access_token"], world) == 401
    assert _refresh(app_client, world, tokens["refresh_token"])[1]["error"] == "invalid_grant"


def test_revoking_an_unknown_token_is_still_200(app_client: TestClient, world: World) -> None:
    assert app_client.post(REVOKE, data={"token": "never-issued", "client_id": world.public_client}).status_code == 200


def test_introspection(app_client: TestClient, world: World, admin: AuthAdmin) -> None:
    tokens = code_flow_tokens(app_client, world, "launch/patient openid fhirUser patient/*.rs")
    own = app_client.post(INTROSPECT, data={"token": tokens["access_token"], "client_id": world.public_client}).json()
    assert own["active"] is True
    assert own["patient"] == world.patient_a and own["client_id"] == world.public_client
    assert own["scope"] == tokens["scope"] and own["sub"] == "doctor"
    assert own["fhirUser"].startswith(f"{BASE}/Practitioner/")

    # another client may not look at it, unless it is registered as an introspector
    admin.register_client("Nosy", "public", [REDIRECT], "patient/*.rs", client_id="nosy")
    assert app_client.post(INTROSPECT, data={"token": tokens["access_token"], "client_id": "nosy"}).json() == {"active": False}
    server = admin.register_client("Resource server", "confidential-symmetric", [], "", grant_types=["client_credentials"], can_introspect=True)
    seen = app_client.post(INTROSPECT, data={"token": tokens["access_token"]}, auth=(server.client.client_id, server.secret or ""))
    assert seen.json()["active"] is True

    app_client.post(REVOKE, data={"token": tokens["access_token"], "client_id": world.public_client})
    assert app_client.post(INTROSPECT, data={"token": tokens["access_token"], "client_id": world.public_client}).json() == {"active": False}


def test_introspection_needs_client_authentication(app_client: TestClient, world: World) -> None:
    tokens = code_flow_tokens(app_client, world, "launch/patient patient/*.rs")
    response = app_client.post(INTROSPECT, data={"token": tokens["access_token"]})
    assert response.status_code in (400, 401)
    assert response.json()["error"] == "invalid_client"


def test_expired_access_token_is_401(app_client: TestClient, world: World, database) -> None:
    tokens = code_flow_tokens(app_client, world, "launch/patient patient/*.rs")
    with database.session(write=True) as tx:
        tx.execute("UPDATE auth_token SET expires = ? WHERE kind = ?", (1, "access"))
    response = app_client.get(f"{BASE}/Patient/{world.patient_a}", headers={"Authorization": f"Bearer {tokens['access_token']}"})
    assert response.status_code == 401
    assert 'error="invalid_token"' in response.headers["www-authenticate"]
