"""PATCH over HTTP with JSON Patch and FHIRPath Patch."""

from __future__ import annotations

from starlette.testclient import TestClient

JSON = {"Content-Type": "application/fhir+json"}
JSON_PATCH = {"Content-Type": "application/json-patch+json"}


def new_patient(client: TestClient) -> str:
    return client.post("Patient", json={"resourceType": "Patient", "active": True}, headers=JSON).json()["id"]


def test_json_patch_creates_a_new_version(client: TestClient) -> None:
    pid = new_patient(client)
    response = client.request("PATCH", f"Patient/{pid}", json=[{"op": "replace", "path": "/active", "value": False}], headers=JSON_PATCH)
    assert response.status_code == 200, response.text
    assert response.json()["active"] is False
    assert response.json()["meta"]["versionId"] == "2"


def test_fhirpath_patch(client: TestClient) -> None:
    pid = new_patient(client)
    parameters = {
        "resourceType": "Parameters",
        "parameter": [{"name": "operation", "part": [
            {"name": "type", "valueCode": "add"}, {"name": "path", "valueString": "Patient"},
            {"name": "name", "valueString": "birthDate"}, {"name": "value", "valueDate": "1970-01-01"},
        ]}],
    }
    response = client.request("PATCH", f"Patient/{pid}", json=parameters, headers=JSON)
    assert response.status_code == 200, response.text
    assert client.get(f"Patient/{pid}").json()["birthDate"] == "1970-01-01"


def test_patch_with_stale_if_match_is_412(client: TestClient) -> None:
    pid = new_patient(client)
    response = client.request(
        "PATCH", f"Patient/{pid}", json=[{"op": "remove", "path": "/active"}],
        headers={**JSON_PATCH, "If-Match": 'W/"9"'},
    )
    assert response.status_code == 412


def test_patch_producing_invalid_resource_is_rejected_and_nothing_changes(client: TestClient) -> None:
    pid = new_patient(client)
    response = client.request("PATCH", f"Patient/{pid}", json=[{"op": "add", "path": "/gender", "value": "robot"}], headers=JSON_PATCH)
    assert response.status_code == 400
    assert client.get(f"Patient/{pid}").json()["meta"]["versionId"] == "1"


def test_patch_may_not_change_id(client: TestClient) -> None:
    pid = new_patient(client)
    response = client.request("PATCH", f"Patient/{pid}", json=[{"op": "replace", "path": "/id", "value": "other"}], headers=JSON_PATCH)
    assert response.status_code == 422


def test_patch_of_missing_resource_is_404(client: TestClient) -> None:
    response = client.request("PATCH", "Patient/none", json=[{"op": "remove", "path": "/active"}], headers=JSON_PATCH)
    assert response.status_code == 404
