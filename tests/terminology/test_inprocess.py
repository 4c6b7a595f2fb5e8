"""Search modifiers and the validator's required bindings answer from the server's terminology:
a loaded SNOMED CT release, CodeSystems and ValueSets posted to the server, over HTTP."""

from __future__ import annotations

from starlette.testclient import TestClient
from tests.terminology.conftest import FIXTURES

from ficus.store.database import Database
from ficus.terminology.loaders import snomed
from ficus.terminology.loaders.writer import Silent

SCT = "http://snomed.info/sct"
CURRENCIES = "urn:iso:std:iso:4217"
LOCAL = "http://example.org/fhir/CodeSystem/findings"


def conditions(client: TestClient, system: str, codes: list[str]) -> dict[str, str]:
    """Post one Condition per code; their ids by code."""
    ids = {}
    for code in codes:
        body = {"resourceType": "Condition", "subject": {"reference": "Patient/p"}, "code": {"coding": [{"system": system, "code": code}]}}
        response = client.post("Condition", json=body)
        assert response.status_code == 201, response.text
        ids[code] = response.json()["id"]
    return ids


def found(client: TestClient, **query: str) -> set[str]:
    response = client.get("Condition", params=query)
    assert response.status_code == 200, response.text
    return {entry["resource"]["id"] for entry in response.json().get("entry", [])}


def test_below_and_above_follow_a_loaded_snomed_release(database: Database, client: TestClient) -> None:
    snomed.load(database, FIXTURES / "snomed-rf2" / "Snapshot", Silent())
    ids = conditions(client, SCT, ["1000001", "1000002", "1000003", "1000004", "1000005"])
    # 1000001 > 1000002 > {1000003, 1000004} in the release's is-a relationships
    assert found(client, **{"code:below": f"{SCT}|1000002"}) == {ids["1000002"], ids["1000003"], ids["1000004"]}
    assert found(client, **{"code:above": f"{SCT}|1000003"}) == {ids["1000001"], ids["1000002"], ids["1000003"]}
    # the same code in another system is not below it
    other = conditions(client, "http://example.org/other", ["1000003"])
    assert other["1000003"] not in found(client, **{"code:below": f"{SCT}|1000001"})


def test_in_expands_a_stored_value_set_with_filters(database: Database, client: TestClient) -> None:
    snomed.load(database, FIXTURES / "snomed-rf2" / "Snapshot", Silent())
    ids = conditions(client, SCT, ["1000001", "1000002", "1000003", "1000004"])
    value_set = {
        "resourceType": "ValueSet", "url": "http://example.org/fhir/ValueSet/below-2", "status": "active",
        "compose": {"include": [{"system": SCT, "filter": [{"property": "concept", "op": "descendent-of", "value": "1000002"}]}]},
    }
    created = client.post("ValueSet", json=value_set)
    assert created.status_code == 201
    assert found(client, **{"code:in": value_set["url"]}) == {ids["1000003"], ids["1000004"]}
    assert found(client, **{"code:not-in": value_set["url"]}) == {ids["1000001"], ids["1000002"]}

    # an update of the value set is honoured by the next search
    value_set["compose"]["include"][0]["filter"][0]["op"] = "is-a"
    updated = client.put(f"ValueSet/{created.json()['id']}", json={**value_set, "id": created.json()["id"]})
    assert updated.status_code == 200
    assert found(client, **{"code:in": value_set["url"]}) == {ids["1000002"], ids["1000003"], ids["1000004"]}


def test_below_follows_a_posted_code_system(database: Database, client: TestClient) -> None:
    code_system = {
        "resourceType": "CodeSystem", "url": LOCAL, "status": "active", "content": "complete", "hierarchyMeaning": "is-a",
        "concept": [{"code": "finding", "concept": [{"code": "cough", "concept": [{"code": "dry-cough"}]}, {"code": "fever"}]}],
    }
    ids = conditions(client, LOCAL, ["finding", "cough", "dry-cough", "fever"])
    assert found(client, **{"code:below": f"{LOCAL}|cough"}) == {ids["cough"]}  # not known yet: the code alone
    assert client.post("CodeSystem", json=code_system).status_code == 201
    assert found(client, **{"code:below": f"{LOCAL}|cough"}) == {ids["cough"], ids["dry-cough"]}
    assert found(client, **{"code:above": f"{LOCAL}|dry-cough"}) == {ids["finding"], ids["cough"], ids["dry-cough"]}


def test_required_binding_uses_a_code_system_posted_to_the_server(database: Database, client: TestClient) -> None:
    """Money.currency is bound (required) to the ISO 4217 currencies, which the R4 package does
    not enumerate: unknown to the server, a currency is not judged; once the code system is
    posted, an unknown currency is refused with the element's location."""
    invoice = {"resourceType": "Invoice", "status": "draft", "totalNet": {"value": 10, "currency": "XTS"}}
    assert client.post("Invoice", json=invoice).status_code == 201
    currencies = {
        "resourceType": "CodeSystem", "url": CURRENCIES, "status": "active", "content": "complete",
        "concept": [{"code": "EUR", "display": "Euro"}, {"code": "USD", "display": "US Dollar"}],
    }
    assert client.post("CodeSystem", json=currencies).status_code == 201
    refused = client.post("Invoice", json=invoice)
    assert refused.status_code == 400
    issue = refused.json()["issue"][0]
    assert issue["code"] == "code-invalid" and issue["expression"] == ["Invoice.totalNet.currency"]
    invoice["totalNet"]["currency"] = "EUR"
    assert client.post("Invoice", json=invoice).status_code == 201
    bundle = {"resourceType": "Bundle", "type": "transaction", "entry": [
        {"resource": {**invoice, "totalNet": {"value": 1, "currency": "USD"}}, "request": {"method": "POST", "url": "Invoice"}},
        {"resource": {**invoice, "totalNet": {"value": 1, "currency": "XTS"}}, "request": {"method": "POST", "url": "Invoice"}},
    ]}
    assert client.post("", json=bundle).status_code == 400  # all or nothing: the second entry is refused
    assert client.get("Invoice", params={"_summary": "count"}).json()["total"] == 2
