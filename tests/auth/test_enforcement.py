"""Scopes enforced on the FHIR API over HTTP with real tokens: type and interaction per scope,
Bundle entries one by one, system-wide search only with `*` scopes."""

from __future__ import annotations

from starlette.testclient import TestClient
from tests.auth.conftest import BASE, ISSUER

from ficus.auth.admin import AuthAdmin

TOKEN = f"{ISSUER}/auth/token"
JSON = {"Content-Type": "application/fhir+json"}


def _system_token(app_client: TestClient, admin: AuthAdmin, scope: str) -> dict[str, str]:
    registered = admin.register_client("Service", "confidential-symmetric", scope=scope, grant_types=["client_credentials"])
    response = app_client.post(TOKEN, data={"grant_type": "client_credentials", "scope": scope}, auth=(registered.client.client_id, registered.secret or ""))
    assert response.status_code == 200, response.text
    return {"Authorization": f"Bearer {response.json()['access_token']}", **JSON}


def test_each_interaction_needs_its_scope_letter(app_client: TestClient, admin: AuthAdmin) -> None:
    writer = _system_token(app_client, admin, "system/Patient.cruds")
    creator = _system_token(app_client, admin, "system/Patient.c")
    reader = _system_token(app_client, admin, "system/Patient.r")
    pid = app_client.post(f"{BASE}/Patient", json={"resourceType": "Patient"}, headers=creator).json()["id"]
    assert app_client.get(f"{BASE}/Patient/{pid}", headers=creator).status_code == 403
    assert app_client.get(f"{BASE}/Patient/{pid}", headers=reader).status_code == 200
    assert app_client.get(f"{BASE}/Patient/{pid}/_history/1", headers=reader).status_code == 200
    assert app_client.get(f"{BASE}/Patient", headers=reader).status_code == 403  # r is not s
    assert app_client.put(f"{BASE}/Patient/{pid}", json={"resourceType": "Patient", "id": pid, "active": True}, headers=reader).status_code == 403
    assert app_client.put(f"{BASE}/Patient/{pid}", json={"resourceType": "Patient", "id": pid, "active": True}, headers=writer).status_code == 200
    assert app_client.delete(f"{BASE}/Patient/{pid}", headers=reader).status_code == 403
    assert app_client.delete(f"{BASE}/Patient/{pid}", headers=writer).status_code == 204
    assert app_client.get(f"{BASE}/Observation", headers=writer).status_code == 403
    assert app_client.get(f"{BASE}/metadata").status_code == 200


def test_system_search_needs_a_wildcard_scope(app_client: TestClient, admin: AuthAdmin) -> None:
    some = _system_token(app_client, admin, "system/Patient.rs system/Observation.rs")
    everything = _system_token(app_client, admin, "system/*.rs")
    assert app_client.get(f"{BASE}/", params={"_id": "x"}, headers=some).status_code == 403
    assert app_client.get(f"{BASE}/", params={"_id": "x"}, headers=everything).status_code == 200
    assert app_client.get(f"{BASE}/_history", headers=some).status_code == 403
    assert app_client.get(f"{BASE}/_history", headers=everything).status_code == 200


def test_bundle_entries_are_authorized_one_by_one(app_client: TestClient, admin: AuthAdmin) -> None:
    headers = _system_token(app_client, admin, "system/Patient.cruds system/Observation.rs")
    batch = {"resourceType": "Bundle", "type": "batch", "entry": [
        {"resource": {"resourceType": "Patient"}, "request": {"method": "POST", "url": "Patient"}},
        {"resource": {"resourceType": "Observation", "status": "final", "code": {"text": "x"}}, "request": {"method": "POST", "url": "Observation"}},
        {"request": {"method": "GET", "url": "Observation"}},
    ]}
    response = app_client.post(f"{BASE}/", json=batch, headers=headers)
    assert response.status_code == 200
    statuses = [entry["response"]["status"] for entry in response.json()["entry"]]
    assert statuses[0].startswith("201") and statuses[1].startswith("403") and statuses[2].startswith("200")
    transaction = {**batch, "type": "transaction", "entry": batch["entry"][:2]}
    response = app_client.post(f"{BASE}/", json=transaction, headers=headers)
    assert response.status_code == 403
    assert app_client.get(f"{BASE}/Patient", headers=headers).json()["total"] == 1  # the transaction wrote nothing


def test_admin_operations_need_unrestricted_wildcards(app_client: TestClient, admin: AuthAdmin) -> None:
    reader = _system_token(app_client, admin, "system/*.rs")
    response = app_client.post(f"{BASE}/$reindex", json={"resourceType": "Parameters"}, headers=reader)
    assert response.status_code == 403


def test_disabling_a_client_revokes_its_tokens(app_client: TestClient, admin: AuthAdmin) -> None:
    headers = _system_token(app_client, admin, "system/Patient.rs")
    assert app_client.get(f"{BASE}/Patient", headers=headers).status_code == 200
    client_id = admin.clients()[0].client_id
    admin.set_client_active(client_id, False)
    assert app_client.get(f"{BASE}/Patient", headers=headers).status_code == 401
