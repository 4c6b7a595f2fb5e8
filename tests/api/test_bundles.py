"""Batch and transaction Bundles."""

from __future__ import annotations

from starlette.testclient import TestClient

JSON = {"Content-Type": "application/fhir+json"}
MRN = "http://example.org/mrn"


def bundle(kind: str, *entries: dict) -> dict:
    return {"resourceType": "Bundle", "type": kind, "entry": list(entries)}


def post(full_url: str, resource: dict, **request: str) -> dict:
    return {"fullUrl": full_url, "resource": resource, "request": {"method": "POST", "url": resource["resourceType"], **request}}


def test_transaction_resolves_urn_uuid_references_everywhere(client: TestClient) -> None:
    patient_urn = "urn:uuid:61ebe359-bfdc-4613-8bf2-c5e300945f0a"
    observation = {
        "resourceType": "Observation", "status": "final", "code": {"text": "hr"},
        "subject": {"reference": patient_urn},
        "performer": [{"reference": patient_urn}],
        "component": [{"code": {"text": "x"}, "valueString": "y"}],
        "extension": [{"url": "http://example.org/ext", "valueReference": {"reference": patient_urn}}],
    }
    tx = bundle(
        "transaction",
        post("urn:uuid:0b1c5bde-6f08-4d4b-8e8c-0e3f6a0c9f51", observation),
        post(patient_urn, {"resourceType": "Patient", "identifier": [{"system": MRN, "value": "tx1"}]}),
    )
    response = client.post("", json=tx, headers=JSON)
    assert response.status_code == 200, response.text
    result = response.json()
    assert result["type"] == "transaction-response"
    statuses = [e["response"]["status"] for e in result["entry"]]
    assert statuses == ["201 Created", "201 Created"]
    patient_location = result["entry"][1]["response"]["location"]
    patient_ref = "/".join(patient_location.split("/")[:2])
    obs_id = result["entry"][0]["response"]["location"].split("/")[1]
    stored = client.get(f"Observation/{obs_id}").json()
    assert stored["subject"]["reference"] == patient_ref
    assert stored["performer"][0]["reference"] == patient_ref
    assert stored["extension"][0]["valueReference"]["reference"] == patient_ref


def test_transaction_is_all_or_nothing_and_names_failing_entry(client: TestClient) -> None:
    tx = bundle(
        "transaction",
        post("urn:uuid:a", {"resourceType": "Patient", "identifier": [{"system": MRN, "value": "atomic"}]}),
        post("urn:uuid:b", {"resourceType": "Patient", "gender": "robot"}),
    )
    response = client.post("", json=tx, headers=JSON)
    assert response.status_code == 400
    issue = response.json()["issue"][0]
    assert issue["expression"][0].startswith("Bundle.entry[1]")
    assert "Bundle.entry[1]" in issue["diagnostics"]
    assert client.get("Patient", params={"identifier": f"{MRN}|atomic"}).json()["total"] == 0
    assert client.get("_history").json()["total"] == 0


def test_transaction_processing_order_and_conditional_entries(client: TestClient) -> None:
    existing = client.post("Patient", json={"resourceType": "Patient", "identifier": [{"system": MRN, "value": "cond"}]}, headers=JSON).json()
    doomed = client.post("Patient", json={"resourceType": "Patient"}, headers=JSON).json()
    tx = bundle(
        "transaction",
        {"request": {"method": "GET", "url": f"Patient?identifier={MRN}|new"}},
        post("urn:uuid:p", {"resourceType": "Patient", "identifier": [{"system": MRN, "value": "cond"}]}, ifNoneExist=f"identifier={MRN}|cond"),
        {"request": {"method": "DELETE", "url": f"Patient/{doomed['id']}"}},
        post("urn:uuid:o", {"resourceType": "Observation", "status": "final", "code": {"text": "t"}, "subject": {"reference": "urn:uuid:p"}}),
        {"fullUrl": "urn:uuid:q", "resource": {"resourceType": "Patient", "identifier": [{"system": MRN, "value": "new"}]},
         "request": {"method": "PUT", "url": f"Patient?identifier={MRN}|new"}},
    )
    response = client.post("", json=tx, headers=JSON)
    assert response.status_code == 200, response.text
    entries = response.json()["entry"]
    assert entries[0]["resource"]["total"] == 1, "GET entries run after the writes"
    assert entries[1]["response"]["status"] == "200 OK"
    assert entries[2]["response"]["status"] == "204 No Content"
    assert entries[4]["response"]["status"] == "201 Created"
    obs_id = entries[3]["response"]["location"].split("/")[1]
    assert client.get(f"Observation/{obs_id}").json()["subject"]["reference"] == f"Patient/{existing['id']}"
    assert client.get(f"Patient/{doomed['id']}").status_code == 410


def test_transaction_resolves_conditional_references(client: TestClient) -> None:
    pid = client.post("Patient", json={"resourceType": "Patient", "identifier": [{"system": MRN, "value": "123"}]}, headers=JSON).json()["id"]
    tx = bundle("transaction", post("urn:uuid:o", {
        "resourceType": "Observation", "status": "final", "code": {"text": "t"},
        "subject": {"reference": f"Patient?identifier={MRN}|123"},
    }))
    response = client.post("", json=tx, headers=JSON)
    assert response.status_code == 200, response.text
    obs_id = response.json()["entry"][0]["response"]["location"].split("/")[1]
    assert client.get(f"Observation/{obs_id}").json()["subject"]["reference"] == f"Patient/{pid}"
    unresolvable = bundle("transaction", post("urn:uuid:o", {
        "resourceType": "Observation", "status": "final", "code": {"text": "t"},
        "subject": {"reference": f"Patient?identifier={MRN}|none"},
    }))
    failed = client.post("", json=unresolvable, headers=JSON)
    assert failed.status_code in (400, 404, 412)
    assert failed.json()["issue"][0]["expression"][0].startswith("Bundle.entry[0]")


def test_batch_entries_succeed_or_fail_independently(client: TestClient) -> None:
    batch = bundle(
        "batch",
        post("urn:uuid:1", {"resourceType": "Patient", "identifier": [{"system": MRN, "value": "b1"}]}),
        post("urn:uuid:2", {"resourceType": "Patient", "gender": "robot"}),
        {"request": {"method": "GET", "url": "Patient/missing"}},
        {"request": {"method": "GET", "url": f"Patient?identifier={MRN}|b1"}},
    )
    response = client.post("", json=batch, headers=JSON)
    assert response.status_code == 200
    entries = response.json()["entry"]
    assert entries[0]["response"]["status"] == "201 Created"
    assert entries[1]["response"]["status"].startswith("400")
    assert entries[1]["response"]["outcome"]["resourceType"] == "OperationOutcome"
    assert entries[2]["response"]["status"].startswith("404")
    assert entries[3]["resource"]["total"] == 1


def test_bundle_of_wrong_type_or_shape_is_rejected(client: TestClient) -> None:
    assert client.post("", json={"resourceType": "Bundle", "type": "collection"}, headers=JSON).status_code == 400
    assert client.post("", json={"resourceType": "Patient"}, headers=JSON).status_code == 400
    no_request = client.post("", json=bundle("transaction", {"resource": {"resourceType": "Patient"}}), headers=JSON)
    assert no_request.status_code == 400
    assert no_request.json()["issue"][0]["expression"] == ["Bundle.entry[0].request"]


def test_batch_post_search_entry_needs_no_resource(client: TestClient) -> None:
    client.post("Patient", json={"resourceType": "Patient", "identifier": [{"system": MRN, "value": "s1"}]}, headers=JSON)
    batch = bundle("batch", {"request": {"method": "POST", "url": f"Patient/_search?identifier={MRN}|s1"}})
    response = client.post("", json=batch, headers=JSON)
    assert response.status_code == 200, response.text
    entry = response.json()["entry"][0]
    assert entry["response"]["status"] == "200 OK"
    assert entry["resource"]["total"] == 1


def test_transaction_versions_share_one_last_updated_and_keep_decimals(client: TestClient) -> None:
    """One transaction, one `lastUpdated` (in each resource and the response's lastModified);
    decimals keep their exact text through decoding, indexing and storage."""
    first = client.post("", json=bundle("transaction", post("urn:uuid:p0", {"resourceType": "Patient"})), headers=JSON)
    observation = (
        '{"resourceType": "Observation", "status": "final", "code": {"text": "weight"},'
        ' "subject": {"reference": "urn:uuid:p1"},'
        ' "valueQuantity": {"value": 72.50, "unit": "kg", "system": "http://unitsofmeasure.org", "code": "kg"},'
        ' "component": [{"code": {"text": "tiny"}, "valueQuantity": {"value": 1.000000000000000000001}},'
        ' {"code": {"text": "big"}, "valueQuantity": {"value": 1.0E+2}}]}'
    )
    text = (
        '{"resourceType": "Bundle", "type": "transaction", "entry": ['
        '{"fullUrl": "urn:uuid:p1", "resource": {"resourceType": "Patient"}, "request": {"method": "POST", "url": "Patient"}},'
        f'{{"fullUrl": "urn:uuid:o1", "resource": {observation}, "request": {{"method": "POST", "url": "Observation"}}}}]}}'
    )
    response = client.post("", content=text.encode(), headers=JSON)
    assert response.status_code == 200, response.text
    entries = response.json()["entry"]
    stamps = {e["response"]["lastModified"] for e in entries}
    stored = [client.get(e["response"]["location"].rsplit("/_history", 1)[0]) for e in entries]
    assert len(stamps) == 1
    assert {s.json()["meta"]["lastUpdated"] for s in stored} == stamps
    assert stamps != {first.json()["entry"][0]["response"]["lastModified"]}, "another transaction, another time"
    body = stored[1].content
    assert b'"value":72.50' in body and b'"value":1.000000000000000000001' in body and b'"value":1.0E+2' in body
    assert client.get("Observation", params={"value-quantity": "72.5|http://unitsofmeasure.org|kg"}).json()["total"] == 1
    assert client.get("Observation", params={"component-value-quantity": "100"}).json()["total"] == 1
