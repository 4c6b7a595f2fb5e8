"""Read, vread, create, update, delete and history over HTTP, on both databases."""

from __future__ import annotations

from starlette.testclient import TestClient

from ficus import fhirjson

JSON = {"Content-Type": "application/fhir+json"}


def patient(**fields: object) -> dict:
    return {"resourceType": "Patient", "name": [{"family": "Chalmers", "given": ["Peter"]}], **fields}


def create(client: TestClient, resource: dict, **headers: str) -> dict:
    response = client.post(resource["resourceType"], json=resource, headers={**JSON, **headers})
    assert response.status_code == 201, response.text
    return response.json()


def test_create_assigns_id_and_version_and_returns_location(client: TestClient) -> None:
    response = client.post("Patient", json=patient(id="ignored"), headers=JSON)
    assert response.status_code == 201
    body = response.json()
    assert body["id"] != "ignored"
    assert body["meta"]["versionId"] == "1"
    assert response.headers["ETag"] == 'W/"1"'
    assert response.headers["Location"] == f"http://testserver/fhir/Patient/{body['id']}/_history/1"
    assert "Last-Modified" in response.headers


def test_read_returns_exactly_what_was_stored_with_decimals_intact(client: TestClient) -> None:
    observation = {
        "resourceType": "Observation", "status": "final", "code": {"text": "weight"},
        "valueQuantity": {"value": 72.50, "unit": "kg"},
    }
    raw = b'{"resourceType":"Observation","status":"final","code":{"text":"weight"},"valueQuantity":{"value":72.50,"unit":"kg"}}'
    created = client.post("Observation", content=raw, headers=JSON)
    assert created.status_code == 201, created.text
    read = client.get(f"Observation/{created.json()['id']}")
    assert read.status_code == 200
    assert b'"value":72.50' in read.content
    assert read.content == created.content
    assert fhirjson.decode(read.content)["valueQuantity"]["unit"] == observation["valueQuantity"]["unit"]


def test_update_creates_new_version_and_vread_returns_each(client: TestClient) -> None:
    created = create(client, patient())
    pid = created["id"]
    updated = client.put(f"Patient/{pid}", json=patient(id=pid, gender="male"), headers=JSON)
    assert updated.status_code == 200
    assert updated.json()["meta"]["versionId"] == "2"
    assert client.get(f"Patient/{pid}/_history/1").json().get("gender") is None
    assert client.get(f"Patient/{pid}/_history/2").json()["gender"] == "male"
    assert client.get(f"Patient/{pid}/_history/3").status_code == 404


def test_update_as_create_with_client_id(client: TestClient) -> None:
    response = client.put("Patient/pat-1", json=patient(id="pat-1"), headers=JSON)
    assert response.status_code == 201
    assert client.get("Patient/pat-1").json()["id"] == "pat-1"


def test_update_with_id_mismatch_is_rejected(client: TestClient) -> None:
    response = client.put("Patient/a", json=patient(id="b"), headers=JSON)
    assert response.status_code == 400
    assert response.json()["issue"][0]["expression"] == ["Patient.id"]


def test_if_match_with_stale_version_is_412(client: TestClient) -> None:
    pid = create(client, patient())["id"]
    ok = client.put(f"Patient/{pid}", json=patient(id=pid), headers={**JSON, "If-Match": 'W/"1"'})
    assert ok.status_code == 200
    stale = client.put(f"Patient/{pid}", json=patient(id=pid), headers={**JSON, "If-Match": 'W/"1"'})
    assert stale.status_code == 412
    assert stale.json()["resourceType"] == "OperationOutcome"


def test_delete_then_read_is_410_and_history_keeps_versions(client: TestClient) -> None:
    pid = create(client, patient())["id"]
    deleted = client.delete(f"Patient/{pid}")
    assert deleted.status_code == 204
    assert client.get(f"Patient/{pid}").status_code == 410
    assert client.delete(f"Patient/{pid}").status_code == 204
    history = client.get(f"Patient/{pid}/_history").json()
    assert history["type"] == "history"
    assert history["total"] == 2
    assert [e["request"]["method"] for e in history["entry"]] == ["DELETE", "POST"]
    assert client.get(f"Patient/{pid}/_history/1").status_code == 200
    recreated = client.put(f"Patient/{pid}", json=patient(id=pid), headers=JSON)
    assert recreated.status_code == 201
    assert recreated.json()["meta"]["versionId"] == "3"


def test_read_unknown_resource_is_404_and_unknown_type_is_404(client: TestClient) -> None:
    assert client.get("Patient/nope").status_code == 404
    response = client.get("Spaceship/1")
    assert response.status_code == 404
    assert response.json()["resourceType"] == "OperationOutcome"


def test_history_type_and_system_level_with_since_and_count(client: TestClient) -> None:
    first = create(client, patient())
    create(client, {"resourceType": "Organization", "name": "ACME"})
    since = first["meta"]["lastUpdated"]
    create(client, patient(gender="female"))
    type_history = client.get("Patient/_history").json()
    assert type_history["total"] == 2
    system = client.get("_history", params={"_count": "1"}).json()
    assert system["total"] == 3
    assert len(system["entry"]) == 1
    assert any(link["relation"] == "next" for link in system["link"])
    after = client.get("_history", params={"_since": since}).json()
    assert after["total"] == 3
    later = client.get("_history", params={"_since": "2999-01-01T00:00:00Z"}).json()
    assert later["total"] == 0


def test_history_paging_is_stable_while_others_write(client: TestClient) -> None:
    for _ in range(3):
        create(client, patient())
    page1 = client.get("Patient/_history", params={"_count": "2"}).json()
    create(client, patient(gender="other"))
    next_url = next(link["url"] for link in page1["link"] if link["relation"] == "next")
    page2 = client.get(next_url.removeprefix("http://testserver/fhir/")).json()
    seen = [e["fullUrl"] for e in page1["entry"] + page2["entry"]]
    assert len(seen) == len(set(seen)) == 3


def test_prefer_return_minimal_and_operation_outcome(client: TestClient) -> None:
    minimal = client.post("Patient", json=patient(), headers={**JSON, "Prefer": "return=minimal"})
    assert minimal.status_code == 201 and minimal.content == b""
    outcome = client.post("Patient", json=patient(), headers={**JSON, "Prefer": "return=OperationOutcome"})
    assert outcome.json()["resourceType"] == "OperationOutcome"


def test_summary_and_elements_on_read(client: TestClient) -> None:
    pid = create(client, patient(gender="male", text={"status": "generated", "div": "<div xmlns=\"http://www.w3.org/1999/xhtml\">x</div>"}, maritalStatus={"text": "married"}))["id"]
    summary = client.get(f"Patient/{pid}", params={"_summary": "true"}).json()
    assert "maritalStatus" not in summary and summary["gender"] == "male"
    assert summary["meta"]["tag"][0]["code"] == "SUBSETTED"
    elements = client.get(f"Patient/{pid}", params={"_elements": "gender"}).json()
    assert set(elements) == {"resourceType", "id", "meta", "gender"}
    data = client.get(f"Patient/{pid}", params={"_summary": "data"}).json()
    assert "text" not in data and "maritalStatus" in data
    assert client.get(f"Patient/{pid}", params={"_summary": "bogus"}).status_code == 400


def test_format_negotiation(client: TestClient) -> None:
    pid = create(client, patient())["id"]
    assert client.get(f"Patient/{pid}", params={"_format": "json"}).status_code == 200
    assert client.get(f"Patient/{pid}", headers={"Accept": "application/fhir+json"}).status_code == 200
    assert client.get(f"Patient/{pid}", params={"_format": "xml"}).status_code == 406
    assert client.get(f"Patient/{pid}", headers={"Accept": "application/fhir+xml"}).status_code == 406
    pretty = client.get(f"Patient/{pid}", params={"_pretty": "true"})
    assert b"\n  " in pretty.content
    assert pretty.headers["content-type"].startswith("application/fhir+json")


def test_if_none_match_gives_304(client: TestClient) -> None:
    pid = create(client, patient())["id"]
    assert client.get(f"Patient/{pid}", headers={"If-None-Match": 'W/"1"'}).status_code == 304


def test_bad_input_gets_operation_outcome_not_5xx(client: TestClient) -> None:
    cases = [
        client.post("Patient", content=b"{not json", headers=JSON),
        client.post("Patient", json={"resourceType": "Observation", "status": "final", "code": {"text": "x"}}, headers=JSON),
        client.post("Patient", json=[1, 2], headers=JSON),
        client.post("Patient", content=b"", headers=JSON),
        client.post("Patient", content=b"<Patient/>", headers={"Content-Type": "application/fhir+xml"}),
        client.put("Patient/bad id!", json=patient(id="bad id!"), headers=JSON),
        client.post("Patient", json=patient(gender="robot"), headers=JSON),
        client.post("Patient", json=patient(birthDate="1970-13-45"), headers=JSON),
        client.post("Patient", json=patient(unknownField=1), headers=JSON),
        client.get("Patient/x/_history/abc"),
        client.request("PATCH", "Patient/x", content=b"[1]", headers={"Content-Type": "application/json-patch+json"}),
    ]
    for response in cases:
        assert 400 <= response.status_code < 500, (response.status_code, response.text)
        assert response.json()["resourceType"] == "OperationOutcome"


def test_invalid_code_names_the_element(client: TestClient) -> None:
    response = client.post("Patient", json=patient(gender="robot"), headers=JSON)
    assert response.status_code == 400
    expressions = [e for issue in response.json()["issue"] for e in issue.get("expression", [])]
    assert "Patient.gender" in expressions


def test_oversized_body_is_413(client: TestClient, settings) -> None:
    big = b'{"resourceType":"Patient","text":"' + b"x" * (settings.max_body_bytes + 1) + b'"}'
    response = client.post("Patient", content=big, headers=JSON)
    assert response.status_code == 413
    assert response.json()["resourceType"] == "OperationOutcome"


def test_capability_statement_lists_every_resource_type(client: TestClient) -> None:
    statement = client.get("metadata").json()
    assert statement["resourceType"] == "CapabilityStatement"
    assert statement["fhirVersion"] == "4.0.1"
    types = {r["type"] for r in statement["rest"][0]["resource"]}
    assert {"Patient", "Observation", "MedicinalProductUndesirableEffect", "Bundle"} <= types
    assert {"transaction", "batch", "history-system", "search-system"} <= {i["code"] for i in statement["rest"][0]["interaction"]}
    patient_entry = next(r for r in statement["rest"][0]["resource"] if r["type"] == "Patient")
    assert "Patient:general-practitioner" in patient_entry["searchInclude"]
    assert "identifier" in {p["name"] for p in patient_entry["searchParam"]}
