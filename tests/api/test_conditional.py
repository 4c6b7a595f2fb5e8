"""Conditional create, update, delete and patch (hl7.org/fhir/R4/http.html)."""

from __future__ import annotations

from starlette.testclient import TestClient

JSON = {"Content-Type": "application/fhir+json"}
MRN = "http://example.org/mrn"


def patient(mrn: str, **fields: object) -> dict:
    return {"resourceType": "Patient", "identifier": [{"system": MRN, "value": mrn}], **fields}


def test_conditional_create_returns_existing_on_one_match(client: TestClient) -> None:
    first = client.post("Patient", json=patient("1"), headers={**JSON, "If-None-Exist": f"identifier={MRN}|1"})
    assert first.status_code == 201
    again = client.post("Patient", json=patient("1"), headers={**JSON, "If-None-Exist": f"identifier={MRN}|1"})
    assert again.status_code == 200
    assert again.json()["id"] == first.json()["id"]
    assert client.get("Patient", params={"identifier": f"{MRN}|1"}).json()["total"] == 1


def test_conditional_create_with_two_matches_returns_412(client: TestClient) -> None:
    client.post("Patient", json=patient("dup"), headers=JSON)
    client.post("Patient", json=patient("dup"), headers=JSON)
    response = client.post("Patient", json=patient("dup"), headers={**JSON, "If-None-Exist": f"identifier={MRN}|dup"})
    assert response.status_code == 412


def test_conditional_create_with_unknown_parameter_is_400(client: TestClient) -> None:
    response = client.post("Patient", json=patient("x"), headers={**JSON, "If-None-Exist": "nonsense=1"})
    assert response.status_code == 400
    assert client.get("Patient").json()["total"] == 0


def test_conditional_update_creates_then_updates(client: TestClient) -> None:
    created = client.put("Patient", params={"identifier": f"{MRN}|7"}, json=patient("7"), headers=JSON)
    assert created.status_code == 201
    pid = created.json()["id"]
    updated = client.put("Patient", params={"identifier": f"{MRN}|7"}, json=patient("7", gender="female"), headers=JSON)
    assert updated.status_code == 200
    assert updated.json()["id"] == pid
    assert updated.json()["meta"]["versionId"] == "2"


def test_conditional_update_with_several_matches_is_412(client: TestClient) -> None:
    client.post("Patient", json=patient("m"), headers=JSON)
    client.post("Patient", json=patient("m"), headers=JSON)
    response = client.put("Patient", params={"identifier": f"{MRN}|m"}, json=patient("m"), headers=JSON)
    assert response.status_code == 412


def test_conditional_delete(client: TestClient) -> None:
    pid = client.post("Patient", json=patient("d"), headers=JSON).json()["id"]
    response = client.delete("Patient", params={"identifier": f"{MRN}|d"})
    assert response.status_code == 204
    assert client.get(f"Patient/{pid}").status_code == 410
    assert client.delete("Patient", params={"identifier": f"{MRN}|d"}).status_code == 204


def test_conditional_patch(client: TestClient) -> None:
    pid = client.post("Patient", json=patient("p"), headers=JSON).json()["id"]
    response = client.request(
        "PATCH", "Patient", params={"identifier": f"{MRN}|p"},
        json=[{"op": "add", "path": "/gender", "value": "male"}],
        headers={"Content-Type": "application/json-patch+json"},
    )
    assert response.status_code == 200, response.text
    assert client.get(f"Patient/{pid}").json()["gender"] == "male"
    missing = client.request(
        "PATCH", "Patient", params={"identifier": f"{MRN}|none"},
        json=[{"op": "add", "path": "/gender", "value": "male"}],
        headers={"Content-Type": "application/json-patch+json"},
    )
    assert missing.status_code == 404


def test_search_by_last_updated_and_id(client: TestClient) -> None:
    body = client.post("Patient", json=patient("t"), headers=JSON).json()
    assert client.get("Patient", params={"_id": body["id"]}).json()["total"] == 1
    stamp = body["meta"]["lastUpdated"]
    assert client.get("Patient", params={"_lastUpdated": f"ge{stamp}"}).json()["total"] == 1
    assert client.get("Patient", params={"_lastUpdated": f"gt{stamp}"}).json()["total"] == 0
