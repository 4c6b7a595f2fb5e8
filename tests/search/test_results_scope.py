"""Where search runs (type, POST _search, system, compartment, Bundle entries), errors and
`_explain`, on both databases."""

from __future__ import annotations

import pytest
from starlette.testclient import TestClient

JSON = {"Content-Type": "application/fhir+json"}
FORM = {"Content-Type": "application/x-www-form-urlencoded"}
STRICT = {"Prefer": "handling=strict"}


def create(client: TestClient, resource: dict) -> str:
    response = client.post(resource["resourceType"], json=resource, headers=JSON)
    assert response.status_code == 201, response.text
    return response.json()["id"]


def refs(bundle: dict, mode: str = "match") -> list[str]:
    return [
        f"{e['resource']['resourceType']}/{e['resource']['id']}"
        for e in bundle.get("entry", []) if e["search"]["mode"] == mode
    ]


@pytest.fixture
def people(client: TestClient) -> dict[str, str]:
    ids = {"ann": create(client, {"resourceType": "Patient", "name": [{"family": "Ann"}], "gender": "female"}),
           "bob": create(client, {"resourceType": "Patient", "name": [{"family": "Bob"}], "gender": "male"})}
    ids["doc"] = create(client, {"resourceType": "Practitioner", "name": [{"family": "Doc"}]})
    ids["org"] = create(client, {"resourceType": "Organization", "name": "Ann's clinic"})
    for who in ("ann", "bob"):
        ids[f"{who}-obs"] = create(client, {
            "resourceType": "Observation", "status": "final", "code": {"coding": [{"system": "s", "code": who}]},
            "subject": {"reference": f"Patient/{ids[who]}"},
        })
        ids[f"{who}-cond"] = create(client, {
            "resourceType": "Condition", "subject": {"reference": f"Patient/{ids[who]}"}, "code": {"text": "flu"},
        })
    # an observation where Ann is only the performer: still in her compartment
    ids["ann-perf"] = create(client, {
        "resourceType": "Observation", "status": "final", "code": {"text": "x"},
        "subject": {"reference": f"Patient/{ids['bob']}"}, "performer": [{"reference": f"Patient/{ids['ann']}"}],
    })
    return ids


def test_post_search_merges_form_body_and_query_string(client: TestClient, people: dict[str, str]) -> None:
    response = client.post("Patient/_search?_sort=-family", content="gender=female,male&_count=1", headers=FORM)
    assert response.status_code == 200, response.text
    bundle = response.json()
    assert bundle["total"] == 2 and refs(bundle) == [f"Patient/{people['bob']}"]
    next_url = next(link["url"] for link in bundle["link"] if link["relation"] == "next")
    assert "gender=female%2Cmale" in next_url and "_sort=-family" in next_url
    assert refs(client.get(next_url.removeprefix("http://testserver/fhir/")).json()) == [f"Patient/{people['ann']}"]
    wrong = client.post("Patient/_search", json={"gender": "male"}, headers=JSON)
    assert wrong.status_code == 415


def test_system_search_over_types_with_common_parameters(client: TestClient, people: dict[str, str]) -> None:
    bundle = client.get("", params={"_type": "Patient,Practitioner", "_sort": "_lastUpdated"}).json()
    assert refs(bundle) == [f"Patient/{people['ann']}", f"Patient/{people['bob']}", f"Practitioner/{people['doc']}"]
    by_id = client.get("", params={"_id": f"{people['doc']},{people['org']}"}).json()
    assert sorted(refs(by_id)) == sorted([f"Practitioner/{people['doc']}", f"Organization/{people['org']}"])
    everything = client.get("", params={"_count": "100"}).json()
    assert everything["total"] == 9
    posted = client.post("_search", content="_type=Organization", headers=FORM).json()
    assert refs(posted) == [f"Organization/{people['org']}"]
    # birthdate is a Patient parameter but not an Organization one: not common to the searched types
    lenient = client.get("", params={"_type": "Patient,Organization", "birthdate": "2000"}).json()
    assert lenient["total"] == 3 and lenient["entry"][-1]["search"]["mode"] == "outcome"
    strict = client.get("", params={"_type": "Patient,Organization", "birthdate": "2000"}, headers=STRICT)
    assert strict.status_code == 400
    assert client.get("", params={"_type": "Spaceship"}).status_code == 400
    with_include = client.get("", params={"_type": "Observation", "_include": "Observation:subject", "code": "s|ann"})
    assert refs(with_include.json(), "include") == [f"Patient/{people['ann']}"]


def test_compartment_search_by_type_and_everything(client: TestClient, people: dict[str, str]) -> None:
    ann = people["ann"]
    observations = client.get(f"Patient/{ann}/Observation").json()
    assert sorted(refs(observations)) == sorted([f"Observation/{people['ann-obs']}", f"Observation/{people['ann-perf']}"])
    filtered = client.get(f"Patient/{ann}/Observation", params={"code": "s|ann"}).json()
    assert refs(filtered) == [f"Observation/{people['ann-obs']}"]
    everything = client.get(f"Patient/{ann}/*", params={"_sort": "_lastUpdated"}).json()
    assert refs(everything) == [
        f"Patient/{ann}", f"Observation/{people['ann-obs']}", f"Condition/{people['ann-cond']}", f"Observation/{people['ann-perf']}",
    ]
    assert everything["link"][0]["url"].startswith(f"http://testserver/fhir/Patient/{ann}/*?")
    not_a_member = client.get(f"Patient/{ann}/Organization").json()
    assert not_a_member["total"] == 0
    paged = client.get(f"Patient/{ann}/*", params={"_count": "3"}).json()
    second = client.get(next(link["url"] for link in paged["link"] if link["relation"] == "next").removeprefix("http://testserver/fhir/")).json()
    assert len(set(refs(paged) + refs(second))) == 4
    posted = client.post(f"Patient/{ann}/Condition/_search", content="", headers=FORM).json()
    assert refs(posted) == [f"Condition/{people['ann-cond']}"]
    assert client.get(f"Organization/{people['org']}/Patient").status_code == 404


def test_searches_inside_batch_and_transaction_entries(client: TestClient, people: dict[str, str]) -> None:
    for kind in ("batch", "transaction"):
        bundle = {"resourceType": "Bundle", "type": kind, "entry": [
            {"request": {"method": "GET", "url": "Patient?_sort=family&_count=1"}},
            {"request": {"method": "GET", "url": f"Patient/{people['ann']}/Observation?_summary=count"}},
            {"request": {"method": "GET", "url": "Observation?code=s|bob&_include=Observation:subject"}},
        ]}
        response = client.post("", json=bundle, headers=JSON)
        assert response.status_code == 200, response.text
        results = [entry["resource"] for entry in response.json()["entry"]]
        assert refs(results[0]) == [f"Patient/{people['ann']}"] and results[0]["total"] == 2
        assert results[1]["total"] == 2
        assert refs(results[2], "include") == [f"Patient/{people['bob']}"]


def test_unknown_parameters_lenient_and_strict(client: TestClient, people: dict[str, str]) -> None:
    lenient = client.get("Patient", params={"shoe-size": "42", "gender": "male"}).json()
    assert refs(lenient) == [f"Patient/{people['bob']}"]
    outcome = lenient["entry"][-1]
    assert outcome["search"]["mode"] == "outcome"
    assert outcome["resource"]["issue"][0]["expression"] == ["shoe-size"]
    assert "shoe-size" not in lenient["link"][0]["url"]
    strict = client.get("Patient", params={"shoe-size": "42"}, headers=STRICT)
    assert strict.status_code == 400
    assert strict.json()["issue"][0]["expression"] == ["shoe-size"]
    assert client.get("Patient", params={"_type": "Patient"}, headers=STRICT).status_code == 400


def test_malformed_values_are_400_naming_the_parameter_never_5xx(client: TestClient, people: dict[str, str]) -> None:
    for params, name in (
        ({"birthdate": "not-a-date"}, "birthdate"),
        ({"_lastUpdated": "gt99999-01-01"}, "_lastUpdated"),
        ({"_count": "9" * 30}, "_count"),
    ):
        response = client.get("Patient", params=params)
        assert response.status_code == 400, response.text
        assert response.json()["issue"][0]["expression"] == [name]
    huge = client.post("Patient/_search", content="_id=" + ",".join(f"i{n}" for n in range(40000)), headers=FORM)
    assert huge.status_code in (200, 400), huge.text
    assert huge.status_code == 400 or huge.json()["total"] == 0


def test_head_and_bundle_shape(client: TestClient, people: dict[str, str]) -> None:
    assert client.head("Patient").status_code == 200
    bundle = client.get("Patient", params={"_sort": "family"}).json()
    assert bundle["type"] == "searchset" and bundle["total"] == 2
    entry = bundle["entry"][0]
    assert entry["fullUrl"] == f"http://testserver/fhir/Patient/{people['ann']}"
    assert entry["search"] == {"mode": "match"}


def test_explain_only_when_enabled(client: TestClient, people: dict[str, str], client_with) -> None:
    disabled = client.get("Patient", params={"gender": "male", "_explain": "true"}).json()
    assert disabled["resourceType"] == "Bundle" and disabled["entry"][-1]["search"]["mode"] == "outcome"
    explained = client_with(explain=True).get("Patient", params={"gender": "male", "_sort": "family", "_count": "1", "_explain": "true"}).json()
    assert explained["resourceType"] == "Parameters"
    parts = {p["name"]: p for p in explained["parameter"]}
    assert parts["database"]["valueString"] in ("sqlite", "postgresql")
    statements = [
        {q["name"]: q for q in p["part"]} for p in explained["parameter"] if p["name"] == "statement"
    ]
    page = statements[0]
    assert page["purpose"]["valueString"] == "page"
    assert "idx_token" in page["sql"]["valueString"] and '"male"' in page["parameters"]["valueString"]
    assert page["plan"]["valueString"] and not page["plan"]["valueString"].startswith("(no plan")


def test_nul_characters_in_search_values_are_a_400(client: TestClient) -> None:
    response = client.get("Patient", params={"name": "a\x00b"})
    assert response.status_code == 400
    assert response.json()["issue"][0]["expression"] == ["name"]
