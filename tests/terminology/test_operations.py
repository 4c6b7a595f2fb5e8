"""The terminology operations over HTTP: shipped content, stored resources, GET and POST,
type and instance level, and their errors."""

from __future__ import annotations

from starlette.testclient import TestClient
from tests.terminology.test_loaders import parameters

GENDER = "http://hl7.org/fhir/ValueSet/administrative-gender"
CODE_SYSTEM = {
    "resourceType": "CodeSystem", "id": "colours", "url": "http://example.org/colours", "version": "1", "name": "Colours",
    "status": "active", "content": "complete", "hierarchyMeaning": "is-a",
    "concept": [
        {"code": "warm", "display": "Warm colour", "concept": [{"code": "red", "display": "Red"}, {"code": "orange", "display": "Orange"}]},
        {"code": "cold", "display": "Cold colour", "concept": [{"code": "blue", "display": "Blue"}]},
    ],
}
VALUE_SET = {
    "resourceType": "ValueSet", "id": "warm", "url": "http://example.org/vs/warm", "version": "1", "status": "active",
    "compose": {"include": [{"system": "http://example.org/colours", "filter": [{"property": "concept", "op": "is-a", "value": "warm"}]}]},
}
CONCEPT_MAP = {
    "resourceType": "ConceptMap", "id": "colours-to-rgb", "url": "http://example.org/cm/rgb", "status": "active",
    "group": [{"source": "http://example.org/colours", "target": "http://example.org/rgb",
               "element": [{"code": "red", "target": [{"code": "FF0000", "equivalence": "equivalent"}]}]}],
}


def store(client: TestClient, *resources: dict) -> None:
    for resource in resources:
        response = client.put(f"{resource['resourceType']}/{resource['id']}", json=resource)
        assert response.status_code in (200, 201), response.text


def codes(body: dict) -> list[str]:
    """Every code of an expansion, nested ones included (a hierarchy is kept when no paging
    or excludeNested=true asks for a flat list)."""
    found: list[str] = []
    stack = list(body["expansion"].get("contains", []))
    while stack:
        item = stack.pop(0)
        found.append(item["code"])
        stack.extend(item.get("contains", []))
    return found


def test_core_and_tho_content_is_there_from_the_start(client: TestClient) -> None:
    body = client.get(f"ValueSet/$expand?url={GENDER}").json()
    assert sorted(codes(body)) == ["female", "male", "other", "unknown"]
    page = client.get(f"ValueSet/$expand?url={GENDER}&count=2&offset=1").json()
    assert page["expansion"]["total"] == 4 and page["expansion"]["offset"] == 1 and len(codes(page)) == 2
    assert codes(client.get(f"ValueSet/$expand?url={GENDER}&filter=fem").json()) == ["female"]
    act = client.get("CodeSystem/$lookup?system=http://terminology.hl7.org/CodeSystem/v3-ActClass&code=OBS").json()
    assert parameters(act)["display"] == ["observation"] and parameters(act)["version"] == ["4.0.0"]
    valid = client.get(f"ValueSet/$validate-code?url={GENDER}&system=http://hl7.org/fhir/administrative-gender&code=male").json()
    assert parameters(valid)["result"] == [True]


def test_stored_resources_by_canonical_url_and_by_instance(client: TestClient) -> None:
    store(client, CODE_SYSTEM, VALUE_SET, CONCEPT_MAP)
    assert sorted(codes(client.get("ValueSet/$expand?url=http://example.org/vs/warm").json())) == ["orange", "red", "warm"]
    assert sorted(codes(client.get("ValueSet/warm/$expand").json())) == ["orange", "red", "warm"]
    posted = client.post("ValueSet/warm/$validate-code", json={"resourceType": "Parameters", "parameter": [
        {"name": "coding", "valueCoding": {"system": "http://example.org/colours", "code": "blue"}}]}).json()
    assert parameters(posted)["result"] == [False]
    looked_up = client.get("CodeSystem/colours/$lookup?code=red").json()
    assert parameters(looked_up)["display"] == ["Red"]
    subsumes = client.get("CodeSystem/$subsumes?system=http://example.org/colours&codeA=warm&codeB=red").json()
    assert parameters(subsumes)["outcome"] == ["subsumes"]
    checked = client.get("CodeSystem/$validate-code?url=http://example.org/colours&code=red&display=Rouge").json()
    assert parameters(checked)["result"] == [False] and "Wrong Display Name 'Rouge'" in parameters(checked)["message"][0]
    forward = client.get("ConceptMap/$translate?url=http://example.org/cm/rgb&system=http://example.org/colours&code=red").json()
    match = parameters(forward)["match"][0]
    assert parameters(forward)["result"] == [True] and {"name": "equivalence", "valueCode": "equivalent"} in match
    reverse = client.get("ConceptMap/colours-to-rgb/$translate?system=http://example.org/rgb&code=FF0000&reverse=true").json()
    assert parameters(reverse)["result"] == [True]
    updated = {**VALUE_SET, "compose": {"include": [{"system": "http://example.org/colours", "concept": [{"code": "blue"}]}]}}
    store(client, updated)
    assert codes(client.get("ValueSet/$expand?url=http://example.org/vs/warm").json()) == ["blue"]


def test_errors_are_operation_outcomes_with_the_right_status(client: TestClient) -> None:
    missing = client.get("ValueSet/$expand?url=http://example.org/vs/none")
    assert missing.status_code == 404 and missing.json()["resourceType"] == "OperationOutcome"
    unknown_system = client.get("CodeSystem/$lookup?system=http://example.org/none&code=x")
    assert unknown_system.status_code == 404
    unknown_code = client.get("CodeSystem/$lookup?system=http://hl7.org/fhir/administrative-gender&code=none")
    assert unknown_code.status_code == 404
    assert client.get(f"ValueSet/$expand?url={GENDER}&count=many").status_code == 400
    assert client.get("CodeSystem/$lookup?system=http://hl7.org/fhir/administrative-gender").status_code == 400
    assert client.get("ValueSet/$expand").status_code == 400
    assert client.get("ValueSet/unknown/$expand").status_code == 404
    assert client.post("ValueSet/$expand", json={"resourceType": "Patient"}).status_code == 400
